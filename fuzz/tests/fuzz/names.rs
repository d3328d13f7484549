use roomcast_fuzz::fuzz;
use roomcast_fuzz::targets::names::TARGET;

#[test]
fn fuzz_names() {
    fuzz(&TARGET);
}
