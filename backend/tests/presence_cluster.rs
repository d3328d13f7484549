//! Presence across nodes on a real `redis-server`: people on one node are
//! seen on the other, a move between nodes within the grace shows no
//! leave, and a node killed with -9 has its people leave for everyone
//! within the node's time to live.

mod support;

use std::time::Duration;

use roomcast_testkit::LocalRedis;
use support::*;
use tokio::time::Instant;
use uuid::Uuid;

/// The documented bound for a dead node's people to leave (its time to
/// live on the node list, 10 s, plus a check every 3.3 s, well inside it).
const DEAD_NODE_LEAVES_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_a_killed_nodes_people_leave_within_the_ttl() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let url = redis.url();
    let node_a = start_node(&url, |config| config.presence_grace = Duration::from_secs(3)).await;
    let database = std::env::temp_dir().join(format!("roomcast-unused-{}.sqlite3", Uuid::new_v4()));
    let args = ["--redis", url.as_str(), "--presence-grace", "3s", "--max-connections-per-ip", "0"];
    let node_b = ServerProcess::start(free_addr(), &database, &args).await;
    let (addr_a, addr_b) = (node_a.local_addr(), node_b.addr);

    let (ann, bob, cat) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut ann_ws = connect_json_as(addr_a, "lobby", ann, Some("Ann")).await;
    let mut bob_ws = connect_json_as(addr_b, "lobby", bob, Some("Bob")).await;
    let cat_on_b = connect_json_as(addr_b, "lobby", cat, Some("Cat")).await;
    let mut ann_view = PresenceView::default();
    watch_presence(&mut ann_ws, &mut ann_view, PATIENCE, |view| view.people.len() == 3).await;
    let mut bob_view = PresenceView::default();
    watch_presence(&mut bob_ws, &mut bob_view, PATIENCE, |view| view.people.len() == 3).await;

    // Cat moves from B to A within the grace: nobody sees a leave.
    drop(cat_on_b);
    let _cat_on_a = connect_json_as(addr_a, "lobby", cat, Some("Cat")).await;
    // Absence over the grace is the claim itself: wait it out.
    tokio::time::sleep(Duration::from_secs(4)).await;
    presence_until_pong(&mut ann_ws, &mut ann_view).await;
    assert!(!ann_view.saw_leave_of(cat), "a move within the grace shows no leave: {:?}", ann_view.events);
    assert_eq!(ann_view.people.get(&cat), Some(&1));

    // B dies without a word: Bob leaves for Ann on A.
    let killed = Instant::now();
    node_b.kill_9();
    watch_presence(&mut ann_ws, &mut ann_view, DEAD_NODE_LEAVES_WITHIN, |view| view.saw_leave_of(bob)).await;
    assert!(killed.elapsed() <= DEAD_NODE_LEAVES_WITHIN);
    assert_eq!(ann_view.people.keys().copied().collect::<std::collections::BTreeSet<_>>(), [ann, cat].into());

    // The API on A reads the same, from its view.
    drop(bob_ws);
    node_a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_a_group_later_loads_who_is_already_there() {
    let redis = LocalRedis::start().expect("a local redis-server (the test script installs Debian's)");
    let url = redis.url();
    let node_a = start_node(&url, |_| {}).await;
    let node_b = start_node(&url, |_| {}).await;
    let people: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut on_a = Vec::new();
    for person in &people {
        on_a.push(connect_json_as(node_a.local_addr(), "lobby", *person, None).await);
    }
    let mut watcher = PresenceView::default();
    watch_presence(&mut on_a[0], &mut watcher, PATIENCE, |view| view.people.len() == 5).await;

    // B has nobody in the group until now: its view comes from Redis.
    let newcomer = Uuid::new_v4();
    let mut on_b = connect_json_as(node_b.local_addr(), "lobby", newcomer, None).await;
    let mut view = PresenceView::default();
    watch_presence(&mut on_b, &mut view, PATIENCE, |view| view.people.len() == 6).await;
    assert!(people.iter().all(|person| view.people.get(person) == Some(&1)), "{view:?}");
    watch_presence(&mut on_a[0], &mut watcher, PATIENCE, |view| view.people.contains_key(&newcomer)).await;
    node_a.shutdown().await;
    node_b.shutdown().await;
}
