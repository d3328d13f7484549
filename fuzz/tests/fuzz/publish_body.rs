use roomcast_backend::publish_api;
use roomcast_fuzz::fixtures::{block_on, UnderTest, API_KEY};
use roomcast_fuzz::fuzz;
use roomcast_fuzz::harness::replay;
use roomcast_fuzz::targets::publish_body::TARGET;

#[test]
fn fuzz_publish_body() {
    fuzz(&TARGET);
}

/// Found by this target: besides the documented `{"text": …, "name": …}`,
/// the publish API takes serde's sequence form of its body, `["text"]` or
/// `["text", "name"]`, under the same rules (the target allows it).
#[test]
fn an_array_body_is_taken() {
    replay(&TARGET, "found-array-body");
    let backend = UnderTest::new();
    for body in [r#"["hi"]"#, r#"["hi", "Deploy bot"]"#] {
        let published =
            block_on(publish_api::publish(API_KEY, "fuzz", body.as_bytes(), None, &backend.sequencer, 65_536));
        assert!(published.is_ok(), "{body}: {published:?}");
    }
}
