use roomcast_fuzz::fuzz;
use roomcast_fuzz::harness::replay;
use roomcast_fuzz::targets::token::TARGET;

#[test]
fn fuzz_token() {
    fuzz(&TARGET);
}

/// A signed payload that repeats a registered claim (`iss`) is refused as
/// malformed, though `Claims` alone would ignore it: jsonwebtoken reads
/// those claims itself. Refusing is safe; the target allows it.
#[test]
fn repeated_registered_claims_are_refused() {
    replay(&TARGET, "found-repeated-registered-claims");
}

/// A signed payload that is not valid JSON text (a string of bytes that
/// are not UTF-8) but has a past `exp` is refused as expired: jsonwebtoken
/// reads `exp` skipping the other fields. Refused either way.
#[test]
fn an_expired_payload_is_refused_before_it_is_decoded() {
    replay(&TARGET, "found-expired-before-decoded");
}
