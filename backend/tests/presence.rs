//! Presence through a real server and real sockets: who each member sees,
//! with how many connections; a reload within the grace shows no leave, a
//! close shows one after it; anonymous members are counted, not listed;
//! large groups get coalesced counts only; the server API.

mod support;

use std::time::Duration;

use roomcast_shared::ServerEvent;
use support::*;
use tokio::time::Instant;
use uuid::Uuid;

/// Short enough for a test, long enough for a reconnect within it.
const GRACE: Duration = Duration::from_secs(2);

async fn start_with_grace() -> roomcast_backend::Server {
    let mut config = test_config();
    config.presence_grace = GRACE;
    start(config).await
}

#[tokio::test]
async fn members_see_who_is_here_with_their_connections_and_a_reload_shows_no_leave() {
    let server = start_with_grace().await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bob_ws = connect_json_as(addr, "lobby", bob, Some("Bob")).await;
    let mut bob_view = PresenceView::default();
    watch_presence(&mut bob_ws, &mut bob_view, PATIENCE, |view| view.people.get(&bob) == Some(&1)).await;
    assert!(matches!(bob_view.events[0], ServerEvent::Presence { .. }), "a snapshot first: {:?}", bob_view.events);

    let mut ann_tab = connect_json_as(addr, "lobby", ann, Some("Ann")).await;
    let ann_other_tab = connect_json_as(addr, "lobby", ann, Some("Ann")).await;
    let _raw = connect_raw(addr, "lobby").await;
    watch_presence(&mut bob_ws, &mut bob_view, PATIENCE, |view| {
        view.people.get(&ann) == Some(&2) && view.count.anonymous == 1
    })
    .await;
    assert_eq!((bob_view.count.people, bob_view.count.listed), (2, true));
    let mut ann_view = PresenceView::default();
    watch_presence(&mut ann_tab, &mut ann_view, PATIENCE, |view| {
        view.people.len() == 2 && view.people.get(&ann) == Some(&2)
    })
    .await;

    // One tab closes: the count goes down at once, no leave.
    drop(ann_other_tab);
    watch_presence(&mut bob_ws, &mut bob_view, PATIENCE, |view| view.people.get(&ann) == Some(&1)).await;

    // A reload: the last tab goes and comes back within the grace.
    drop(ann_tab);
    let ann_tab = connect_json_as(addr, "lobby", ann, Some("Ann")).await;
    // Absence over the grace is the claim itself: wait it out.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    presence_until_pong(&mut bob_ws, &mut bob_view).await;
    assert!(!bob_view.saw_leave_of(ann), "a reload shows no leave: {:?}", bob_view.events);
    assert_eq!(bob_view.people.get(&ann), Some(&1));

    // Closed for good: a leave, and not before the grace is over.
    let closed = Instant::now();
    drop(ann_tab);
    watch_presence(&mut bob_ws, &mut bob_view, PATIENCE, |view| view.saw_leave_of(ann)).await;
    assert!(closed.elapsed() >= GRACE, "left after {:?}, within the grace", closed.elapsed());
    assert_eq!((bob_view.people.len(), bob_view.count.people), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn open_mode_and_raw_members_are_counted_but_not_listed() {
    let server = start_open().await;
    let addr = server.local_addr();
    let mut tokenless = connect_json_url(&format!("ws://{addr}/ws/open/{}?name=Eve", Uuid::new_v4()), "open").await;
    let _raw = connect_raw(addr, "open").await;
    let verified = Uuid::new_v4();
    let _verified = connect_json_as(addr, "open", verified, Some("Vera")).await;
    let mut view = PresenceView::default();
    watch_presence(&mut tokenless, &mut view, PATIENCE, |view| view.count.anonymous == 2 && view.count.people == 1)
        .await;
    assert_eq!(view.people.keys().copied().collect::<Vec<_>>(), [verified], "only the verified one is named");
    server.shutdown().await;
}

#[tokio::test]
async fn above_the_threshold_members_get_counts_only_at_most_once_a_second() {
    let mut config = test_config();
    config.presence_list_max = 3;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut first = connect_json(addr, "big").await;
    let mut view = PresenceView::default();
    watch_presence(&mut first, &mut view, PATIENCE, |view| view.count.people == 1).await;
    assert!(view.count.listed);

    let started = Instant::now();
    let mut others = Vec::new();
    for _ in 0..12 {
        others.push(connect_json(addr, "big").await);
    }
    watch_presence(&mut first, &mut view, PATIENCE, |view| view.count.people == 13).await;
    assert!(!view.count.listed && view.people.is_empty(), "counts only: {view:?}");
    // Past the threshold: a snapshot without members, then counts (as
    // snapshots) at most once a second.
    let updates =
        view.events.iter().skip_while(|event| !matches!(event, ServerEvent::Presence { count, .. } if !count.listed));
    let updates = updates.count();
    let allowed = 2 + started.elapsed().as_secs() as usize;
    assert!(updates <= allowed, "{updates} updates in {:?}: {:?}", started.elapsed(), view.events);
    server.shutdown().await;
}

#[tokio::test]
async fn the_api_lists_a_groups_presence_with_the_api_key_only() {
    let key = "presence-api-key-0123456789abcdef";
    let mut config = test_config();
    config.api_key = Some(key.to_owned());
    let server = start(config).await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let mut ann_ws = connect_json_as(addr, "lobby", ann, Some("Ann")).await;
    let _raw = connect_raw(addr, "lobby").await;
    let mut view = PresenceView::default();
    watch_presence(&mut ann_ws, &mut view, PATIENCE, |view| view.count.people == 1 && view.count.anonymous == 1).await;

    let bearer = format!("Bearer {key}");
    let (status, body) = http_request(addr, "/api/groups/lobby/presence", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["count"]["people"], 1);
    assert_eq!(answer["count"]["anonymous"], 1);
    assert_eq!(answer["members"][0]["client_id"], ann.to_string());
    assert_eq!(answer["members"][0]["name"], "Ann");
    assert_eq!(answer["members"][0]["connections"], 1);

    let (status, body) = http_request(addr, "/api/groups/empty/presence", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["count"]["people"], 0);
    for (path, headers, expected) in [
        ("/api/groups/lobby/presence", vec![], 401),
        ("/api/groups/lobby/presence", vec![("authorization", "Bearer wrong-key-0123456789abcdefgh")], 401),
        ("/api/groups/lobby/presence?limit=5000", vec![("authorization", bearer.as_str())], 400),
        ("/api/groups/no%20spaces/presence", vec![("authorization", bearer.as_str())], 400),
    ] {
        assert_eq!(http_request(addr, path, &headers).await.0, expected, "{path} {headers:?}");
    }
    server.shutdown().await;
}
