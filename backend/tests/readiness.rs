//! Redis mode: `/readyz` answers 200 only when a send will succeed. After
//! Redis was down and is back, a node is ready only once the connection
//! that appends has answered and the subscriber listens again to every
//! group it has members in; the first sends after that are acknowledged.
//! A test binary of its own: it takes Redis down three times.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use roomcast_shared::ServerEvent;
use roomcast_testkit::LocalRedis;
use support::*;
use tokio::time::Instant;

/// Polls `GET /readyz` on every node until all answer 200; how long it took.
async fn until_ready(nodes: &[SocketAddr]) -> Duration {
    let started = Instant::now();
    for addr in nodes {
        while http_request(*addr, "/readyz", &[]).await.0 != 200 {
            assert!(started.elapsed() < PATIENCE, "{addr} never became ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    started.elapsed()
}

/// Sends `count` messages at once and expects every one acknowledged.
async fn all_acknowledged(ws: &mut Client, count: usize, what: &str) {
    let mut sent = Vec::new();
    for n in 0..count {
        sent.push(send_text(ws, &format!("{what} {n}")).await);
    }
    for _ in 0..count {
        match next_answer(ws).await {
            ServerEvent::Ack { id, .. } => assert!(sent.contains(&id)),
            other => panic!("{what}: a send after /readyz said 200 was refused: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_ready_means_a_send_will_succeed() {
    let mut redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    const KEY: &str = "readiness-test-api-key-0123456789abcdef";
    let first = start_node(&redis.url(), |config| config.api_key = Some(KEY.to_owned())).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let nodes = [first.local_addr(), second.local_addr()];
    let mut on_first = connect_json(nodes[0], "outages").await;
    let mut on_second = connect_json(nodes[1], "outages").await;
    all_acknowledged(&mut on_first, 1, "before").await;
    for outage in [Duration::from_secs(2), Duration::from_millis(3_500), Duration::from_secs(5)] {
        redis.kill();
        // Down: both nodes notice (their writers are checked twice a
        // second) and say so.
        for addr in nodes {
            let noticed = Instant::now();
            while http_request(addr, "/readyz", &[]).await.0 == 200 {
                assert!(noticed.elapsed() < PATIENCE, "{addr} still ready with Redis down");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(outage.saturating_sub(Duration::from_secs(1))).await; // the rest of the outage
        redis.restart().unwrap();
        let took = until_ready(&nodes).await;
        eprintln!("Redis back after a {outage:?} outage: both nodes ready {took:?} later");
        all_acknowledged(&mut on_first, 5, "a batch").await;
        all_acknowledged(&mut on_second, 1, "alone").await;
        let bearer = format!("Bearer {KEY}");
        let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
        let (status, body) =
            raw_request(nodes[0], "POST", "/api/groups/outages/messages", &headers, r#"{"text":"by the API"}"#).await;
        assert_eq!(status, 201, "the publish API after /readyz said 200: {body}");
    }
    // A FLUSHALL (or a failover to an empty replica) keeps the node ready:
    // the next sends start a new epoch and are acknowledged.
    let _: () = redis::cmd("FLUSHALL").query(&mut redis.connection()).unwrap();
    until_ready(&nodes).await;
    all_acknowledged(&mut on_first, 5, "after a flush").await;
    all_acknowledged(&mut on_second, 1, "after a flush, alone").await;
    // Scripts flushed (as a restart without them does): the batch that
    // finds them gone is sent again on a new connection, which loads them.
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut redis.connection()).unwrap();
    all_acknowledged(&mut on_first, 5, "after the scripts were flushed").await;
    all_acknowledged(&mut on_second, 1, "after the scripts were flushed, alone").await;
    first.shutdown().await;
    second.shutdown().await;
}

/// `--check-config` asks Redis: a running one answers (exit 0), the same
/// address without it does not (exit 2).
#[tokio::test]
async fn check_config_asks_redis() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let url = redis.url();
    let check = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
            .args(["--check-config", "--secret", TEST_SECRET, "--redis", url.as_str()])
            .env("RUST_LOG", "off")
            .output()
    };
    let answered = check().await.unwrap();
    let text = String::from_utf8_lossy(&answered.stdout).into_owned();
    assert_eq!(answered.status.code(), Some(0), "{text}");
    assert!(text.contains("answers"), "{text}");
    drop(redis);
    let gone = check().await.unwrap();
    assert_eq!(gone.status.code(), Some(2), "{}", String::from_utf8_lossy(&gone.stdout));
}
