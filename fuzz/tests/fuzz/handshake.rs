use roomcast_fuzz::fuzz;
use roomcast_fuzz::harness::replay;
use roomcast_fuzz::targets::handshake::TARGET;

#[test]
fn fuzz_handshake() {
    fuzz(&TARGET);
}

/// Found by this target: a Host, Origin, Authorization or Idempotency-Key
/// header holding bytes that are not text (hyper lets 0x80–0xFF through)
/// got `500 internal error`, and an error line in the log per request.
/// Now `400`.
#[test]
fn a_header_that_is_not_text_is_a_bad_request() {
    replay(&TARGET, "found-origin-not-text");
    replay(&TARGET, "found-host-not-text");
}

/// Found by this target: a path the file system refuses to open (`/%00`,
/// `/api/%00`, a name too long) got warp's file-open error, `500`, and an
/// error line in the log per request (on `/ws/…` and `/api/…`, or
/// without a built app, where no index.html answers instead). Now `404`.
#[test]
fn a_path_the_file_system_cannot_open_is_not_found() {
    replay(&TARGET, "found-path-nul");
    replay(&TARGET, "found-api-path-nul");
    replay(&TARGET, "found-name-too-long");
}
