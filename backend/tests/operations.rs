//! What an operator runs the server with, through the real binary:
//! `--check-config` (the configuration checked and printed with its
//! secrets masked, creating nothing, exit 0 or 2) and `--log-format json`
//! (one object per line, with the connection's group, client and peer, and
//! never a token or a message's text).

mod support;

use std::process::Output;

use roomcast_shared::{ClientCommand, ServerEvent};
use support::*;
use uuid::Uuid;

const KEY: &str = "operations-test-api-key-0123456789abcdef";

async fn check_config(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .arg("--check-config")
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn check_config_prints_the_configuration_masked_and_creates_nothing() {
    let dir = std::env::temp_dir().join(format!("roomcast-check-{}", Uuid::new_v4()));
    let database = dir.join("data").join("history.sqlite3");
    let database = database.to_str().unwrap();
    // A port nobody listens on: Redis does not answer there.
    let closed = free_addr();
    let redis = format!("redis://operator:hunter2-redis@{closed}/");
    let refused =
        check_config(&["--database", database, "--secret", TEST_SECRET, "--api-key", KEY, "--redis", &redis]).await;
    let text = stdout(&refused);
    assert_eq!(refused.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("--redis = redis://***@{closed}/   (command line)")), "{text}");
    assert!(text.contains("--api-key = (given, hidden)") && text.contains("--secret = (given, hidden)"), "{text}");
    assert!(text.contains("--ping-interval = 15s   (default)"), "{text}");
    assert!(text.contains("does not answer") && text.ends_with("the server would not start\n"), "{text}");
    for secret in [TEST_SECRET, KEY, "hunter2-redis"] {
        assert!(!text.contains(secret), "a secret in the report: {text}");
    }

    let fine = check_config(&["--database", database, "--log-format", "json"]).await;
    let text = stdout(&fine);
    assert_eq!(fine.status.code(), Some(0), "{text}");
    assert!(text.contains("--log-format = json   (command line)"), "{text}");
    assert!(text.contains("would create the directory") && text.contains("would generate the secret"), "{text}");
    assert!(!dir.exists(), "it created nothing");

    let invalid = check_config(&["--history", "memory", "--ping-interval", "0"]).await;
    assert_eq!(invalid.status.code(), Some(2));
    assert!(stdout(&invalid).contains("error: --ping-interval must be more than zero"), "{}", stdout(&invalid));
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_connection_and_no_secrets() {
    let dir = std::env::temp_dir().join(format!("roomcast-json-logs-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let args = ["--secret", TEST_SECRET, "--log-format", "json", "--history", "memory"];
    let server = ServerProcess::start_logged_at(free_addr(), &dir.join("history.sqlite3"), &args, "info").await;
    let client = Uuid::new_v4();
    let mut ws = connect_json_as(server.addr, "lobby", client, None).await;
    send_text(&mut ws, "a private text that never reaches a log").await;
    next_chat(&mut ws).await;
    // A close the server logs at info: a frame over the size limit.
    let oversized = "x".repeat(70 * 1024);
    futures_util::SinkExt::send(&mut ws, tokio_tungstenite::tungstenite::Message::text(oversized)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1009);
    let log = server.stop_for_log().await;
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not a JSON object ({err}): {line}")))
        .collect();
    assert!(lines.iter().all(|line| line["level"].is_string() && line["fields"].is_object()), "{log}");
    let closing = lines.iter().find(|line| line["fields"]["message"] == "closing").expect("the close is logged");
    assert_eq!(closing["fields"]["group"], "lobby");
    assert_eq!(closing["fields"]["client"], client.to_string());
    assert_eq!(closing["fields"]["peer"], "127.0.0.1");
    for secret in [TEST_SECRET, "token=", "a private text", &token_for(client)] {
        assert!(!log.contains(secret), "{secret:?} in the log: {log}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_counters_move_by_exactly_the_events_caused() {
    let mut config = test_config();
    with_admin(&mut config);
    config.api_key = Some(KEY.to_owned());
    config.new_groups_per_hour = 1;
    config.max_message_bytes = 1024;
    let server = start(config).await;
    let (addr, admin) = (server.local_addr(), server.admin_addr().expect("listening"));
    let before = Samples::scrape(admin).await;

    // Sockets: 4 upgraded, 4 refused at the handshake, 1 API request.
    let ann = Uuid::new_v4();
    let mut ann_ws = connect_json_as(addr, "lobby", ann, None).await;
    let mut bob_ws = connect_json(addr, "lobby").await;
    let mut raw = connect_raw(addr, "lobby").await;
    let lobby = format!("/ws/lobby/{}", Uuid::new_v4());
    let origin = [UPGRADE_HEADERS.as_slice(), &[("Origin", "https://elsewhere.example")]].concat();
    assert_eq!(http_request(addr, &lobby, &origin).await.0, 403);
    assert_eq!(raw_request(addr, "GET", &lobby, &UPGRADE_HEADERS, "").await.0, 401, "no token");
    let bad_name = format!("/ws/no%20spaces/{ann}?token={}", token_for(ann));
    assert_eq!(raw_request(addr, "GET", &bad_name, &UPGRADE_HEADERS, "").await.0, 400);
    let second_room = format!("/ws/second-room/{ann}?token={}", token_for(ann));
    assert_eq!(raw_request(addr, "GET", &second_room, &UPGRADE_HEADERS, "").await.0, 429, "Ann's one new room");

    // 4 from a socket and 1 through the API, to 2 JSON members and a raw one.
    let mut ids = Vec::new();
    for index in 0..4 {
        ids.push(send_text(&mut ann_ws, &format!("message {index}")).await);
    }
    let (status, _) = post_message(addr, "lobby", Some(KEY), None, r#"{"text":"from the API"}"#).await;
    assert_eq!(status, 201);
    assert_eq!(collect_chats(&mut bob_ws, 5).await.len(), 5);
    for _ in 0..5 {
        next_text(&mut raw).await;
    }
    // Sent again: a duplicate, acknowledged, not stored twice.
    send_command(&mut ann_ws, &ClientCommand::Send { id: ids[0], text: "message 0".into() }).await;
    let mut acks = 0;
    while acks < 5 {
        if let ServerEvent::Ack { .. } = next_answer(&mut ann_ws).await {
            acks += 1;
        }
    }
    // A late joiner replays all 5, then sends a frame over the limit.
    let mut late = connect_json(addr, "lobby").await;
    futures_util::SinkExt::send(&mut late, tokio_tungstenite::tungstenite::Message::text("x".repeat(2048)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut late).await, 1009);

    let after = Samples::scrape(admin).await;
    let moved = |metric: &str, labels: &[(&str, &str)]| moved(&before, &after, metric, labels);
    assert_eq!(moved("roomcast_sockets_accepted_total", &[]), 9.0);
    for (status, count) in [("101", 4.0), ("403", 1.0), ("401", 1.0), ("400", 1.0), ("429", 1.0)] {
        assert_eq!(moved("roomcast_http_responses_total", &[("path", "ws"), ("status", status)]), count, "{status}");
    }
    assert_eq!(moved("roomcast_http_responses_total", &[("path", "api"), ("status", "201")]), 1.0);
    assert_eq!(moved("roomcast_rate_limited_total", &[("kind", "new_groups")]), 1.0);
    assert_eq!(moved("roomcast_messages_published_total", &[("source", "socket")]), 4.0);
    assert_eq!(moved("roomcast_messages_published_total", &[("source", "api")]), 1.0);
    assert_eq!(moved("roomcast_publishes_not_new_total", &[("outcome", "duplicate")]), 1.0);
    assert_eq!(moved("roomcast_messages_delivered_total", &[]), 5.0);
    assert_eq!(moved("roomcast_deliveries_total", &[("mode", "json")]), 10.0);
    assert_eq!(moved("roomcast_deliveries_total", &[("mode", "raw")]), 5.0);
    assert_eq!(moved("roomcast_replays_total", &[("outcome", "gapless")]), 3.0);
    assert!(moved("roomcast_replay_pages_total", &[]) >= 3.0);
    assert_eq!(moved("roomcast_closes_total", &[("reason", "too_big")]), 1.0);
    assert_eq!(moved("roomcast_commit_batch_messages_sum", &[]), 6.0, "every publish stored, in some batches");
    let batches = moved("roomcast_commit_batch_messages_count", &[]);
    assert!(batches >= 1.0 && moved("roomcast_store_append_seconds_count", &[]) == batches);
    assert!(moved("roomcast_store_read_seconds_count", &[]) >= 3.0, "a read per replay page at least");
    drop((ann_ws, bob_ws, raw));
    server.shutdown().await;
}

/// The value of `metric` in a Prometheus text `body`, parsed as Prometheus
/// would.
fn metric(body: &str, metric: &str) -> f64 {
    let scrape =
        prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text");
    let sample =
        scrape.samples.iter().find(|sample| sample.metric == metric).unwrap_or_else(|| panic!("{metric}: {body}"));
    match sample.value {
        prometheus_parse::Value::Gauge(value)
        | prometheus_parse::Value::Counter(value)
        | prometheus_parse::Value::Untyped(value) => value,
        ref other => panic!("{metric}: {other:?}"),
    }
}

#[tokio::test]
async fn the_admin_surface_is_on_its_own_address_behind_its_own_key() {
    let mut config = test_config();
    with_admin(&mut config);
    config.api_key = Some(KEY.to_owned());
    let server = start(config).await;
    let (addr, admin) = (server.local_addr(), server.admin_addr().expect("listening"));
    let _members =
        [connect_json(addr, "lobby").await, connect_json(addr, "lobby").await, connect_raw(addr, "other").await];

    let bearer = format!("Bearer {ADMIN_KEY}");
    let (status, body) = http_request(admin, "/metrics", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(metric(&body, "roomcast_connections"), 3.0);
    assert_eq!(metric(&body, "roomcast_groups"), 2.0);
    assert_eq!(metric(&body, "roomcast_draining"), 0.0);
    assert!(metric(&body, "process_resident_memory_bytes") > 0.0 && metric(&body, "process_open_fds") > 0.0);

    let api_bearer = format!("Bearer {KEY}");
    for headers in [vec![], vec![("authorization", api_bearer.as_str())]] {
        assert_eq!(http_request(admin, "/metrics", &headers).await.0, 401, "{headers:?}");
        assert_eq!(raw_request(admin, "POST", "/drain", &headers, "").await.0, 401, "{headers:?}");
    }
    let (status, body) = http_request(addr, "/metrics", &[("authorization", &bearer)]).await;
    assert!(status != 200 && !body.contains("roomcast_connections"), "never on the public port: {status} {body}");

    assert_eq!(raw_request(admin, "POST", "/drain", &[("authorization", &bearer)], "").await.0, 202);
    // Begun before the answer: a load balancer's next look sees it.
    assert_eq!(http_request(addr, "/readyz", &[]).await.0, 503);
    tokio::time::timeout(PATIENCE, server.drain_requested()).await.expect("the drain is asked for");
    server.shutdown().await;
}
