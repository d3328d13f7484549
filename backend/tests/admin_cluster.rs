//! The admin API across two nodes on one real Redis (a private
//! `redis-server`): one node's admin surface sees both nodes and an
//! identity's connections on the other, and its disconnect and ban close
//! that identity's connections on the other node too; the ban refuses it
//! there until lifted.

mod support;

use roomcast_testkit::LocalRedis;
use serde_json::json;
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn disconnect_and_ban_reach_every_node() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let first = start_node(&redis.url(), with_admin).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let admin = first.admin_addr().unwrap();
    let ann = Uuid::new_v4();
    let mut there = connect_json_as(second.local_addr(), "lobby", ann, None).await;

    // Both nodes answer once the second listens to the control channel.
    let polls = async {
        loop {
            let overview = admin_json(admin, "GET", "/admin/api/overview", "").await;
            if overview["nodes"].as_array().is_some_and(|nodes| nodes.len() == 2) && overview["missing_nodes"] == 0 {
                return overview;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let overview = tokio::time::timeout(PATIENCE, polls).await.expect("both nodes answer");
    let other = overview["nodes"].as_array().unwrap().iter().find(|node| node["this"] == false).unwrap().clone();
    assert_eq!(other["connections"], 1, "{overview}");
    let identity = admin_json(admin, "GET", &format!("/admin/api/identities/{ann}"), "").await;
    assert_eq!(identity["connections"], json!([{"node": other["node"], "group": "lobby", "mode": "json"}]));

    let done =
        admin_json(admin, "POST", &format!("/admin/api/identities/{ann}/disconnect"), r#"{"reason":"bye"}"#).await;
    assert_eq!(done["closed_here"], 0, "none on the first node");
    assert_eq!(removed_then_closed(&mut there).await, ("bye".to_owned(), None, 4010));

    let mut there = connect_json_as(second.local_addr(), "lobby", ann, None).await;
    let ban = admin_json(admin, "POST", "/admin/api/bans", &format!(r#"{{"sub":"{ann}","duration_s":600}}"#)).await;
    let until_ms = ban["until_ms"].as_u64();
    assert_eq!(removed_then_closed(&mut there).await, (String::new(), until_ms, 4403));
    let lobby = format!("/ws/lobby/{ann}?token={}", token_for(ann));
    assert_eq!(raw_request(second.local_addr(), "GET", &lobby, &UPGRADE_HEADERS, "").await.0, 403, "refused there too");

    let id = ban["id"].as_str().unwrap();
    assert_eq!(admin_call(admin, "DELETE", &format!("/admin/api/bans/{id}"), "").await.0, 204);
    eventually_async(|| async { raw_request(second.local_addr(), "GET", &lobby, &UPGRADE_HEADERS, "").await.0 == 101 })
        .await;
    first.shutdown().await;
    second.shutdown().await;
}

/// A pub/sub connection Redis drops is made again and counted once; the
/// head checks go on being timed.
#[tokio::test]
async fn a_lost_pubsub_connection_is_counted_once() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let node = start_node(&redis.url(), with_admin).await;
    let admin = node.admin_addr().unwrap();
    let mut member = connect_json(node.local_addr(), "lobby").await;
    // Its first message makes the group's epoch: the ack may come first.
    send_text(&mut member, "subscribed").await;
    collect_chats(&mut member, 1).await;
    let before = Samples::scrape(admin).await;
    let mut connection = redis.connection();
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut connection).unwrap();
    let polls = async {
        loop {
            let now = Samples::scrape(admin).await;
            if moved(&before, &now, "roomcast_redis_resubscribes_total", &[]) >= 1.0
                && moved(&before, &now, "roomcast_redis_head_check_seconds_count", &[]) >= 2.0
            {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let after = tokio::time::timeout(PATIENCE, polls).await.expect("the subscriber connects again");
    assert_eq!(moved(&before, &after, "roomcast_redis_resubscribes_total", &[]), 1.0);
    send_text(&mut member, "delivered after it").await;
    assert_eq!(collect_chats(&mut member, 1).await[0].text, "delivered after it");
    node.shutdown().await;
}
