use roomcast_fuzz::fuzz;
use roomcast_fuzz::targets::raw_frame::TARGET;

#[test]
fn fuzz_raw_frame() {
    fuzz(&TARGET);
}
