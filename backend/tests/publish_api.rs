//! The server-side publish API: the key, idempotency, and what members see.

mod support;

use support::*;

const KEY: &str = "publish-api-test-key-0123456789abcdef";

#[tokio::test]
async fn the_server_publishes_with_its_key_once_per_idempotency_key() {
    let mut config = test_config();
    config.api_key = Some(KEY.to_owned());
    let server = start(config).await;
    let addr = server.local_addr();
    let mut member = connect_json(addr, "news").await;

    assert_eq!(post_message(addr, "news", None, None, r#"{"text":"x"}"#).await.0, 401, "no key");
    // The key comes before the body: a huge body that never arrives does
    // not matter.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /api/groups/news/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 401", "checked before the body");
    assert_eq!(
        post_message(addr, "news", Some("wrong-key-wrong-key-wrong-key-wrong"), None, r#"{"text":"x"}"#).await.0,
        401
    );

    let (status, body) =
        post_message(addr, "news", Some(KEY), Some("release-1.2"), r#"{"text":"1.2 is out","name":"Releases"}"#).await;
    assert_eq!(status, 201, "{body}");
    let published: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(published["seq"], 1);
    assert_eq!(published["epoch"].as_str().map(str::len), Some(16));
    let message = next_chat(&mut member).await;
    assert_eq!((message.text.as_str(), message.from.verified), ("1.2 is out", true));
    assert_eq!(message.from.name.as_ref().map(|n| n.as_str()), Some("Releases"));

    // A retry with the same key: the same place, not a second message.
    let (status, body) =
        post_message(addr, "news", Some(KEY), Some("release-1.2"), r#"{"text":"1.2 is out","name":"Releases"}"#).await;
    assert_eq!(status, 200, "{body}");
    let repeat: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((repeat["seq"].clone(), repeat["duplicate"].clone()), (published["seq"].clone(), true.into()));
    let (status, _) = post_message(addr, "news", Some(KEY), Some("release-1.2"), r#"{"text":"something else"}"#).await;
    assert_eq!(status, 409, "the same key for another text");

    // Without a key, nothing is deduplicated.
    for _ in 0..2 {
        assert_eq!(post_message(addr, "news", Some(KEY), None, r#"{"text":"ping"}"#).await.0, 201);
    }
    assert_eq!(next_chat(&mut member).await.seq, 2);
    assert_eq!(next_chat(&mut member).await.seq, 3);
    assert_eq!(stored_history(addr, "news").await.len(), 3);

    for (idempotency, body) in [
        (None, "not json"),
        (None, r#"{"text":"  "}"#),
        (None, r#"{"text":"bell \u0007"}"#),
        (None, r#"{"text":"x","name":""}"#),
        (Some(&*"k".repeat(129)), r#"{"text":"x"}"#),
    ] {
        assert_eq!(post_message(addr, "news", Some(KEY), idempotency, body).await.0, 400, "{body}");
    }
    assert_eq!(post_message(addr, "bad group!", Some(KEY), None, r#"{"text":"x"}"#).await.0, 400);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), next_event(&mut member)).await.is_err(),
        "nothing else delivered"
    );
    server.shutdown().await;
}

/// Once retention removed the original, its key is still told apart by
/// text: a retry is a duplicate, another text a `409`.
/// The publish API's body may be larger than a message: the text is held
/// to the same limit as a client's, counted as JSON members receive it.
#[tokio::test]
async fn a_text_over_the_message_limit_gets_413() {
    let mut config = test_config();
    config.api_key = Some(KEY.to_owned());
    config.max_message_bytes = 1024;
    let server = start(config).await;
    let addr = server.local_addr();
    let quoted = format!(r#"{{"text":"{}"}}"#, "\\\"".repeat(600));
    let (status, body) = post_message(addr, "limits", Some(KEY), None, &quoted).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("1024"), "{body}");
    let within = format!(r#"{{"text":"{}"}}"#, "y".repeat(1024));
    assert_eq!(post_message(addr, "limits", Some(KEY), None, &within).await.0, 201);
    server.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_key_outlives_its_message() {
    let mut config = test_config();
    config.api_key = Some(KEY.to_owned());
    config.retention_messages = 1;
    config.retention_interval = std::time::Duration::from_millis(20);
    let server = start(config).await;
    let addr = server.local_addr();
    assert_eq!(post_message(addr, "brief", Some(KEY), Some("first"), r#"{"text":"one"}"#).await.0, 201);
    assert_eq!(post_message(addr, "brief", Some(KEY), Some("second"), r#"{"text":"two"}"#).await.0, 201);
    let group = "brief".parse().unwrap();
    eventually(|| server.history().store().head(&group).unwrap().oldest == Some(2)).await;
    let (status, body) = post_message(addr, "brief", Some(KEY), Some("first"), r#"{"text":"one"}"#).await;
    assert_eq!(status, 200, "{body}");
    let repeat: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((repeat["seq"].clone(), repeat["duplicate"].clone()), (1.into(), true.into()));
    assert_eq!(post_message(addr, "brief", Some(KEY), Some("first"), r#"{"text":"not one"}"#).await.0, 409);
    assert_eq!(stored_history(addr, "brief").await.len(), 1, "nothing stored again");
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_configured_key_the_api_is_off_and_readyz_answers() {
    let server = start_default().await;
    let addr = server.local_addr();
    assert_eq!(post_message(addr, "news", Some(KEY), None, r#"{"text":"x"}"#).await.0, 404);
    let (status, body) = raw_request(addr, "GET", "/readyz", &[], "").await;
    assert_eq!((status, body.contains("ready")), (200, true));
    server.shutdown().await;
}
