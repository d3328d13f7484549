//! The admin API on one node, through real sockets: the overview and one
//! identity's connections, an operator's disconnect (4010 after a
//! `removed` event; the client may come back), a ban of an identity (4403
//! after `removed` with its end; refused with 403 at the handshake and on
//! the API, in JSON) and of a network (even a tokenless client, and new
//! identities), lifting a ban, and what the API refuses. Across two nodes:
//! `admin_cluster.rs`.

mod support;

use roomcast_shared::ClientId;
use serde_json::json;
use support::*;
use uuid::Uuid;

async fn start_with_admin(adjust: impl FnOnce(&mut roomcast_backend::Config)) -> roomcast_backend::Server {
    let mut config = test_config();
    with_admin(&mut config);
    adjust(&mut config);
    start(config).await
}

#[tokio::test]
async fn the_overview_and_an_identity_show_the_connections_here() {
    let server = start_with_admin(|_| {}).await;
    let (addr, admin) = (server.local_addr(), server.admin_addr().unwrap());
    let ann = Uuid::new_v4();
    let _ann_lobby = connect_json_as(addr, "lobby", ann, None).await;
    let _ann_raw = connect_raw_as(addr, "kitchen", ann).await;
    let _bob = connect_json(addr, "lobby").await;

    let overview = admin_json(admin, "GET", "/admin/api/overview", "").await;
    assert_eq!(overview["missing_nodes"], 0, "{overview}");
    let nodes = overview["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{overview}");
    assert_eq!((nodes[0]["this"].clone(), nodes[0]["connections"].clone()), (json!(true), json!(3)));
    assert_eq!(overview["groups_by_members"][0], json!({"group": "lobby", "members": 2, "messages_per_s": 0.0}));
    assert!(overview["series"]["points"].as_array().is_some_and(|points| !points.is_empty()), "{overview}");

    let identity = admin_json(admin, "GET", &format!("/admin/api/identities/{ann}"), "").await;
    let node = nodes[0]["node"].clone();
    assert_eq!(
        identity["connections"],
        json!([{"node": node, "group": "kitchen", "mode": "raw"}, {"node": node, "group": "lobby", "mode": "json"}])
    );
    assert_eq!(identity["bans"], json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_disconnect_closes_the_identitys_connections_with_4010_and_it_may_come_back() {
    let server = start_with_admin(|_| {}).await;
    let (addr, admin) = (server.local_addr(), server.admin_addr().unwrap());
    let ann = Uuid::new_v4();
    let mut first = connect_json_as(addr, "lobby", ann, None).await;
    let mut second = connect_json_as(addr, "kitchen", ann, None).await;
    let mut bob = connect_json(addr, "lobby").await;
    let done =
        admin_json(admin, "POST", &format!("/admin/api/identities/{ann}/disconnect"), r#"{"reason":"calm down"}"#)
            .await;
    assert_eq!(done["closed_here"], 2);
    for ws in [&mut first, &mut second] {
        assert_eq!(removed_then_closed(ws).await, ("calm down".to_owned(), None, 4010));
    }
    assert_round_trip(&mut bob, "still here").await;
    let mut back = connect_json_as(addr, "lobby", ann, None).await;
    assert_round_trip(&mut back, "back again").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_ban_closes_with_4403_and_refuses_the_identity_until_lifted() {
    let server = start_with_admin(|_| {}).await;
    let (addr, admin) = (server.local_addr(), server.admin_addr().unwrap());
    let ann = Uuid::new_v4();
    let mut ws = connect_json_as(addr, "lobby", ann, None).await;
    let mut bystander = connect_json(addr, "lobby").await;
    let ban = admin_json(
        admin,
        "POST",
        "/admin/api/bans",
        &format!(r#"{{"sub":"{ann}","duration_s":3600,"reason":"spam"}}"#),
    )
    .await;
    let until_ms = ban["until_ms"].as_u64().unwrap();
    assert_eq!(removed_then_closed(&mut ws).await, ("spam".to_owned(), Some(until_ms), 4403));
    assert_round_trip(&mut bystander, "unaffected").await;

    // Refused wherever its token is taken: 403, saying until when.
    let lobby = format!("/ws/lobby/{ann}?token={}", token_for(ann));
    let (status, body) = raw_request(addr, "GET", &lobby, &UPGRADE_HEADERS, "").await;
    assert_eq!(status, 403, "{body}");
    let bearer = format!("Bearer {}", token_for(ann));
    let (status, body) = http_request(addr, "/api/identities/me", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"error": "banned", "until_ms": until_ms, "reason": "spam"})
    );
    assert_eq!(http_request(addr, "/api/groups/lobby/messages", &[("Authorization", &bearer)]).await.0, 403);
    let listed = admin_json(admin, "GET", "/admin/api/bans", "").await;
    assert_eq!(listed["bans"], json!([ban.clone()]));
    assert_eq!(
        admin_json(admin, "GET", &format!("/admin/api/identities/{ann}"), "").await["bans"],
        json!([ban.clone()])
    );

    let id = ban["id"].as_str().unwrap();
    assert_eq!(admin_call(admin, "DELETE", &format!("/admin/api/bans/{id}"), "").await.0, 204);
    assert_eq!(admin_call(admin, "DELETE", &format!("/admin/api/bans/{id}"), "").await.0, 404, "lifted once");
    let mut back = connect_json_as(addr, "lobby", ann, None).await;
    assert_round_trip(&mut back, "let back in").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_network_ban_refuses_everyone_from_it_and_new_identities() {
    let server = start_with_admin(|config| config.auth = roomcast_backend::auth::AuthMode::Open).await;
    let (addr, admin) = (server.local_addr(), server.admin_addr().unwrap());
    let url = format!("ws://{addr}/ws/lobby/{}", Uuid::new_v4());
    let (mut tokenless, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let ban = admin_json(admin, "POST", "/admin/api/bans", r#"{"network":"127.0.0.0/8","duration_s":60}"#).await;
    assert_eq!(ban["network"], "127.0.0.0/8");
    assert_eq!(close_code(&mut tokenless).await, 4403);
    let path = format!("/ws/lobby/{}", Uuid::new_v4());
    assert_eq!(raw_request(addr, "GET", &path, &UPGRADE_HEADERS, "").await.0, 403);
    let (status, body) =
        raw_request(addr, "POST", "/api/identities", &[("Content-Type", "application/json")], "{}").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains(r#""error":"banned""#), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_refuses_what_it_cannot_take() {
    let server = start_with_admin(|_| {}).await;
    let admin = server.admin_addr().unwrap();
    let sub = ClientId(Uuid::new_v4());
    for (method, path, body) in [
        ("GET", "/admin/api/overview", ""),
        ("GET", "/admin/api/bans", ""),
        ("POST", "/admin/api/bans", r#"{"network":"127.0.0.1","duration_s":60}"#),
    ] {
        assert_eq!(raw_request(admin, method, path, &[], body).await.0, 401, "{method} {path} without the key");
    }
    for (body, why) in [
        (r#"{"duration_s":60}"#, "names nobody"),
        (format!(r#"{{"sub":"{sub}","duration_s":0}}"#).as_str(), "no time"),
        (r#"{"network":"example.com","duration_s":60}"#, "not a network"),
        (r#"{"network":"10.0.0.0/8","duration_s":60,"reason":"a\nb"}"#, "a reason on two lines"),
        (r#"{"network":"10.0.0.0/8","duration_s":60,"extra":1}"#, "an unknown field"),
        ("not json", "not JSON"),
    ] {
        let (status, text) = admin_call(admin, "POST", "/admin/api/bans", body).await;
        assert_eq!(status, 400, "{why}: {text}");
    }
    assert_eq!(admin_call(admin, "GET", "/admin/api/identities/not-a-uuid", "").await.0, 400);
    assert_eq!(admin_call(admin, "DELETE", "/admin/api/bans/not-a-uuid", "").await.0, 400);
    let long = "x".repeat(201);
    let (status, _) = admin_call(
        admin,
        "POST",
        &format!("/admin/api/identities/{sub}/disconnect"),
        &format!(r#"{{"reason":"{long}"}}"#),
    )
    .await;
    assert_eq!(status, 400, "a reason over 200 characters");
    server.shutdown().await;
}
