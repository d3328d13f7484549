use roomcast_fuzz::fuzz;
use roomcast_fuzz::harness::replay;
use roomcast_fuzz::targets::token::TARGET;

#[test]
fn fuzz_token() {
    fuzz(&TARGET);
}

/// A signed payload that repeats a registered claim (`iss`), or gives one
/// of another type (`"nbf": {}`), is refused as malformed, though `Claims`
/// alone would ignore it: jsonwebtoken reads those claims itself. Refusing
/// is safe; the target allows it.
#[test]
fn odd_registered_claims_are_refused() {
    replay(&TARGET, "found-repeated-registered-claims");
    replay(&TARGET, "found-registered-claim-of-another-type");
}

/// A signed payload that is not valid JSON text (a string of bytes that
/// are not UTF-8) but has a past `exp` is refused as expired: jsonwebtoken
/// reads `exp` skipping the other fields. Refused either way.
#[test]
fn an_expired_payload_is_refused_before_it_is_decoded() {
    replay(&TARGET, "found-expired-before-decoded");
}

/// The last `exp` there is (`u64::MAX`) is far ahead, not expired (the
/// target once overflowed adding its slack to it).
#[test]
fn the_last_exp_there_is_verifies() {
    replay(&TARGET, "found-exp-at-the-end-of-time");
}
