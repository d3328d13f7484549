use roomcast_fuzz::fuzz;
use roomcast_fuzz::targets::command_decode::TARGET;

#[test]
fn fuzz_command_decode() {
    fuzz(&TARGET);
}
