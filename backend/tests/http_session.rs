//! The HTTP fallback through real sockets: the event stream
//! (`text/event-stream`) of a member, resumed with `Last-Event-ID` or
//! `since`; commands posted in batches with their acks in the answer,
//! exactly once through retries; what it refuses (no token, a token in the
//! URL, a post without Origin or `X-Roomcast: 1`, another site's Origin);
//! a stream that goes away leaves its group, and one nobody reads is
//! closed with 1013; tickets for a plain `EventSource`; the stripped
//! `Upgrade` the app asks after; one stream for several members.

mod support;

use roomcast_shared::ServerEvent;
use serde_json::json;
use support::*;
use uuid::Uuid;

fn bearer(client: Uuid) -> String {
    format!("Bearer {}", token_for(client))
}

/// Opens `client`'s event stream of `group` and reads up to its `synced`.
async fn stream_of(addr: std::net::SocketAddr, group: &str, client: Uuid, query: &str) -> (SseClient, Vec<SseEvent>) {
    let bearer = bearer(client);
    let path = format!("/api/events/{group}/{client}{query}");
    let (status, stream, body) = SseClient::open(addr, &path, &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    let mut stream = stream.unwrap();
    let mut events = Vec::new();
    loop {
        let event = stream.next_event().await.expect("events up to synced");
        let synced = matches!(event.server_event(), ServerEvent::Synced { .. });
        events.push(event);
        if synced {
            return (stream, events);
        }
    }
}

/// Posts `commands` for `client` (with `X-Roomcast: 1`); status and body.
async fn post(addr: std::net::SocketAddr, group: &str, client: Uuid, commands: serde_json::Value) -> (u16, String) {
    let bearer = bearer(client);
    let headers = [("Authorization", bearer.as_str()), ("X-Roomcast", "1"), ("Content-Type", "application/json")];
    raw_request(addr, "POST", &format!("/api/events/{group}/{client}"), &headers, &commands.to_string()).await
}

#[tokio::test]
async fn a_stream_gets_what_a_socket_gets_with_ids_and_posts_are_acked_exactly_once() {
    let server = start_default().await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let mut bob = connect_json(addr, "lobby").await;
    let (mut stream, first) = stream_of(addr, "lobby", ann, "").await;
    assert!(matches!(first[0].server_event(), ServerEvent::Welcome(_)), "{first:?}");
    assert!(stream.comments >= 1, "the padding comes first");

    let id = Uuid::new_v4();
    let send = json!([{"type": "send", "id": id, "text": "over plain HTTP"}, {"type": "ping"}, {"type": "typing"}]);
    let (status, body) = post(addr, "lobby", ann, send.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answers: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answers, json!([{"type": "ack", "id": id, "seq": 1}, {"type": "pong"}, null]));
    let from_bob = next_chat(&mut bob).await;
    assert_eq!(from_bob.text, "over plain HTTP");
    let event = loop {
        let event = stream.next_event().await.unwrap();
        if let ServerEvent::Message(_) = event.server_event() {
            break event;
        }
    };
    let ServerEvent::Message(message) = event.server_event() else { unreachable!() };
    let epoch = connect_json_welcomed(addr, "lobby", "").await.1.epoch;
    assert_eq!((event.id.clone(), message.seq), (Some(format!("{epoch}:1")), 1), "a message carries its id");

    // The answer was lost: the same post again is acknowledged the same.
    let (_, again) = post(addr, "lobby", ann, send).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again).unwrap()[0],
        json!({"type": "ack", "id": id, "seq": 1})
    );
    assert_eq!(stored_history(addr, "lobby").await.len(), 1, "stored once");

    send_text(&mut bob, "from a socket").await;
    let ServerEvent::Message(message) = stream.next_event().await.unwrap().server_event() else { panic!() };
    assert_eq!((message.seq, message.text.as_str()), (2, "from a socket"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_resumes_after_its_last_event_id_or_since() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut bob = connect_json(addr, "lobby").await;
    publish_all(&mut bob, &["one".to_owned(), "two".to_owned(), "three".to_owned()], 3).await;
    let epoch = connect_json_welcomed(addr, "lobby", "").await.1.epoch;
    let ann = Uuid::new_v4();
    let bearer = bearer(ann);
    let last = format!("{epoch}:1");
    let path = format!("/api/events/lobby/{ann}");
    let (status, stream, body) =
        SseClient::open(addr, &path, &[("Authorization", &bearer), ("Last-Event-ID", &last)]).await;
    assert_eq!(status, 200, "{body}");
    let mut stream = stream.unwrap();
    let mut seqs = Vec::new();
    while let Some(event) = stream.next_event().await {
        match event.server_event() {
            ServerEvent::Message(message) => seqs.push((event.id.unwrap(), message.seq)),
            ServerEvent::Synced { .. } => break,
            _ => {}
        }
    }
    assert_eq!(seqs, [(format!("{epoch}:2"), 2), (format!("{epoch}:3"), 3)], "after the last id, nothing before");
    let (_, events) = stream_of(addr, "lobby", Uuid::new_v4(), &format!("?since=2&epoch={epoch}")).await;
    let replayed: Vec<u64> = events
        .iter()
        .filter_map(|event| match event.server_event() {
            ServerEvent::Message(message) => Some(message.seq),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, [3]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_fallback_refuses_what_a_socket_refuses_and_forged_posts() {
    let server = start_default().await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let path = format!("/api/events/lobby/{ann}");
    assert_eq!(SseClient::open(addr, &path, &[]).await.0, 401, "no token");
    let in_url = format!("{path}?token={}", token_for(ann));
    assert_eq!(SseClient::open(addr, &in_url, &[]).await.0, 401, "a token in the URL is not taken");
    let others = bearer(Uuid::new_v4());
    assert_eq!(SseClient::open(addr, &path, &[("Authorization", &others)]).await.0, 403, "another's token");
    let bad_last = [("Authorization", bearer(ann)), ("Last-Event-ID", "nonsense".to_owned())];
    let bad_last: Vec<(&str, &str)> = bad_last.iter().map(|(name, value)| (*name, value.as_str())).collect();
    assert_eq!(SseClient::open(addr, &path, &bad_last).await.0, 400);

    let bearer = bearer(ann);
    let body = r#"[{"type":"ping"}]"#;
    let plain = [("Authorization", bearer.as_str())];
    assert_eq!(raw_request(addr, "POST", &path, &plain, body).await.0, 403, "no Origin and no X-Roomcast");
    let elsewhere = [("Authorization", bearer.as_str()), ("Origin", "https://elsewhere.example")];
    assert_eq!(raw_request(addr, "POST", &path, &elsewhere, body).await.0, 403, "another site");
    let own_origin = format!("http://{addr}");
    let same_site = [("Authorization", bearer.as_str()), ("Origin", own_origin.as_str())];
    assert_eq!(raw_request(addr, "POST", &path, &same_site, body).await, (200, r#"[{"type":"pong"}]"#.to_owned()));
    for (body, why) in [("{}", "not an array"), ("[1,2", "not JSON")] {
        let (status, text) = post_raw(addr, &path, &bearer, body).await;
        assert_eq!(status, 400, "{why}: {text}");
    }
    let too_many = serde_json::Value::Array(vec![json!({"type": "ping"}); 65]);
    assert_eq!(post(addr, "lobby", ann, too_many).await.0, 400);
    let (_, answers) =
        post(addr, "lobby", ann, json!([{"type": "send", "id": "x"}, {"type": "refresh", "token": "t"}])).await;
    let answers: serde_json::Value = serde_json::from_str(&answers).unwrap();
    assert_eq!((answers[0]["type"].clone(), answers[1]["type"].clone()), (json!("error"), json!("error")), "{answers}");
    server.shutdown().await;
}

async fn post_raw(addr: std::net::SocketAddr, path: &str, bearer: &str, body: &str) -> (u16, String) {
    raw_request(addr, "POST", path, &[("Authorization", bearer), ("X-Roomcast", "1")], body).await
}

#[tokio::test]
async fn a_stream_that_goes_away_leaves_its_group() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (stream, _) = stream_of(addr, "lobby", Uuid::new_v4(), "").await;
    assert_eq!(server.registry().members(&"lobby".parse().unwrap()), 1);
    drop(stream);
    eventually(|| server.registry().members(&"lobby".parse().unwrap()) == 0).await;
    server.shutdown().await;
}

/// One long poll of `client`: its events (to the body's end) and the
/// session to name next.
async fn poll(addr: std::net::SocketAddr, client: Uuid, query: &str) -> (Vec<SseEvent>, Option<String>) {
    poll_path(addr, client, &format!("/api/events/lobby/{client}?poll=1{query}")).await
}

/// One long poll of `path` by `client`: its events and the session to name
/// next.
async fn poll_path(addr: std::net::SocketAddr, client: Uuid, path: &str) -> (Vec<SseEvent>, Option<String>) {
    let bearer = bearer(client);
    let (status, stream, head) = SseClient::open(addr, path, &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{head}");
    let mut stream = stream.unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.next_event().await {
        events.push(event);
    }
    let session = head
        .lines()
        .find_map(|line| line.strip_prefix("x-roomcast-session: "))
        .map(|session| session.trim().to_owned());
    (events, session)
}

fn messages(events: &[SseEvent]) -> Vec<(Option<String>, u64)> {
    events
        .iter()
        .filter_map(|event| match event.server_event() {
            ServerEvent::Message(message) => Some((event.id.clone(), message.seq)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn long_polls_answer_what_came_or_nothing_and_any_session_resumes_from_the_client_position() {
    let mut config = test_config();
    config.long_poll_timeout = std::time::Duration::from_millis(300);
    let server = start(config).await;
    let addr = server.local_addr();
    let mut bob = connect_json(addr, "lobby").await;
    publish_all(&mut bob, &["one".to_owned()], 1).await;
    let epoch = connect_json_welcomed(addr, "lobby", "").await.1.epoch;
    let ann = Uuid::new_v4();
    // The first poll opens the session: its welcome and replay at least.
    let (mut events, mut session) = poll(addr, ann, "").await;
    while !events.iter().any(|event| matches!(event.server_event(), ServerEvent::Synced { .. })) {
        let query = format!("&session={}", session.clone().expect("a session to poll"));
        let (more, next) = poll(addr, ann, &query).await;
        events.extend(more);
        session = next;
    }
    assert!(matches!(events[0].server_event(), ServerEvent::Welcome(_)));
    assert_eq!(messages(&events), [(Some(format!("{epoch}:1")), 1)]);
    let session = session.expect("the session goes on");

    let (nothing, same) = poll(addr, ann, &format!("&session={session}")).await;
    assert!(messages(&nothing).is_empty() && same.as_deref() == Some(session.as_str()), "empty in time, same session");
    send_text(&mut bob, "two").await;
    let mut came = Vec::new();
    while came.is_empty() {
        came = messages(&poll(addr, ann, &format!("&session={session}")).await.0);
    }
    assert_eq!(came, [(Some(format!("{epoch}:2")), 2)]);

    // A session this node does not hold: a new one, from the client's own
    // position.
    let (fresh, other) = poll(addr, ann, &format!("&session={}&since=1&epoch={epoch}", Uuid::new_v4())).await;
    assert_ne!(other.as_deref(), Some(session.as_str()));
    let mut seqs: Vec<u64> = messages(&fresh).into_iter().map(|(_, seq)| seq).collect();
    let mut next = other;
    while !seqs.contains(&2) {
        let (more, session) = poll(addr, ann, &format!("&session={}", next.expect("a session"))).await;
        seqs.extend(messages(&more).into_iter().map(|(_, seq)| seq));
        next = session;
    }
    assert_eq!(seqs, [2], "after its position, nothing before");
    server.shutdown().await;
}

/// A ticket from `POST …/ticket` for `client`'s stream of `group`.
async fn ticket_for(addr: std::net::SocketAddr, group: &str, client: Uuid) -> String {
    let (status, body) = post_raw(addr, &format!("/api/events/{group}/{client}/ticket"), &bearer(client), "").await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (open_by, expires_at) = (answer["open_by"].as_u64().unwrap(), answer["expires_at"].as_u64().unwrap());
    assert!(open_by > now && open_by <= now + 31, "opened within 30 s: {answer}");
    assert!(expires_at > open_by && expires_at <= now + 3_601, "lasts an hour at most: {answer}");
    answer["ticket"].as_str().unwrap().to_owned()
}

/// The messages of `stream` up to its `synced`, with their ids.
async fn messages_to_synced(stream: &mut SseClient) -> Vec<(Option<String>, u64)> {
    let mut seen = Vec::new();
    while let Some(event) = stream.next_event().await {
        match event.server_event() {
            ServerEvent::Message(message) => seen.push((event.id.clone(), message.seq)),
            ServerEvent::Synced { .. } => return seen,
            _ => {}
        }
    }
    panic!("the stream ended before synced: {seen:?}");
}

#[tokio::test]
async fn a_plain_event_source_opens_its_stream_with_a_ticket_once_and_resumes_with_it() {
    let server = start_default().await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let path = format!("/api/events/lobby/{ann}");
    let asking = format!("{path}/ticket");
    let bearer = bearer(ann);
    assert_eq!(raw_request(addr, "POST", &asking, &[("X-Roomcast", "1")], "").await.0, 401, "no token");
    let plain = [("Authorization", bearer.as_str())];
    assert_eq!(raw_request(addr, "POST", &asking, &plain, "").await.0, 403, "no Origin and no X-Roomcast");
    let others = format!("/api/events/lobby/{}/ticket", Uuid::new_v4());
    assert_eq!(post_raw(addr, &others, &bearer, "").await.0, 403, "another client id's stream");
    let ticket = ticket_for(addr, "lobby", ann).await;

    // Good for its stream alone: not as a token, not for posts, not for
    // another group.
    let as_token = format!("Bearer {ticket}");
    assert_eq!(SseClient::open(addr, &path, &[("Authorization", &as_token)]).await.0, 401, "as a token");
    assert_eq!(post_raw(addr, &path, &as_token, r#"[{"type":"ping"}]"#).await.0, 401, "to post");
    let elsewhere = format!("/api/events/elsewhere/{ann}?ticket={ticket}");
    assert_eq!(SseClient::open(addr, &elsewhere, &[]).await.0, 403, "another group's stream");

    let mut bob = connect_json(addr, "lobby").await;
    publish_all(&mut bob, &["one".to_owned()], 1).await;
    let with_ticket = format!("{path}?ticket={ticket}");
    let (status, stream, body) = SseClient::open(addr, &with_ticket, &[]).await;
    assert_eq!(status, 200, "{body}");
    let mut stream = stream.unwrap();
    let seen = messages_to_synced(&mut stream).await;
    let last = seen.last().and_then(|(id, _)| id.clone()).expect("the message's id");
    assert_eq!(seen.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(), [1]);
    let (status, _, body) = SseClient::open(addr, &with_ticket, &[]).await;
    assert_eq!(status, 401, "opened once: {body}");

    // The browser reconnects with the same URL and its Last-Event-ID.
    drop(stream);
    publish_all(&mut bob, &["two".to_owned()], 1).await;
    let (status, stream, body) = SseClient::open(addr, &with_ticket, &[("Last-Event-ID", &last)]).await;
    assert_eq!(status, 200, "{body}");
    let seen = messages_to_synced(&mut stream.unwrap()).await;
    assert_eq!(seen.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(), [2], "after its last id");
    server.shutdown().await;
}

#[tokio::test]
async fn a_handshake_whose_upgrade_a_proxy_stripped_is_told_to_its_identity() {
    let server = start_default().await;
    let addr = server.local_addr();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let asks = |client: Uuid| async move {
        let bearer = bearer(client);
        let (status, body) =
            raw_request(addr, "GET", "/api/identities/me/transport", &[("Authorization", &bearer)], "").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    assert_eq!(asks(ann).await, json!({"upgrade_stripped": false}), "nothing yet");

    // Ann's handshake, as a proxy that strips `Upgrade` and `Connection`
    // passes it on: a plain GET with the rest of the handshake's headers.
    let protocols =
        format!("{}, {}{}", roomcast_shared::SUBPROTOCOL, roomcast_shared::TOKEN_SUBPROTOCOL_PREFIX, token_for(ann));
    let stripped = [
        ("Sec-WebSocket-Protocol", protocols.as_str()),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    assert_eq!(raw_request(addr, "GET", &format!("/ws/lobby/{ann}"), &stripped, "").await.0, 400);
    assert_eq!(asks(ann).await, json!({"upgrade_stripped": true}));
    assert_eq!(asks(bob).await, json!({"upgrade_stripped": false}), "only hers");
    let (status, _) = raw_request(addr, "GET", "/api/identities/me/transport", &[], "").await;
    assert_eq!(status, 401, "asked with a token only");
    server.shutdown().await;
}

/// `query` as one `m` of a shared stream's URL.
fn member_query(query: &str) -> String {
    format!("m={}", query.replace('=', "%3D").replace('&', "%26"))
}

#[tokio::test]
async fn one_shared_stream_carries_several_members_each_event_naming_its_own() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut bob = connect_json(addr, "lobby").await;
    let mut carl = connect_json(addr, "other").await;
    publish_all(&mut carl, &["earlier".to_owned()], 1).await;
    let epoch = connect_json_welcomed(addr, "other", "").await.1.epoch;

    let ann = Uuid::new_v4();
    let bearer = bearer(ann);
    let members = [member_query("group=lobby&name=Ann"), member_query(&format!("group=other&since=1&epoch={epoch}"))];
    let path = format!("/api/events/{ann}?{}", members.join("&"));
    let (status, stream, body) = SseClient::open(addr, &path, &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    let mut stream = stream.unwrap();
    // Each member's welcome, replay (from its own position) and synced.
    let mut synced = [false, false];
    let mut replayed = Vec::new();
    while synced != [true, true] {
        let event = stream.next_event().await.expect("both members' first events");
        let member = event.member.expect("every event names its member");
        match event.server_event() {
            ServerEvent::Synced { .. } => synced[member] = true,
            ServerEvent::Message(message) => replayed.push((member, message.seq)),
            _ => {}
        }
    }
    assert!(replayed.is_empty(), "nothing before each position: {replayed:?}");
    assert_eq!(stream.comments, 1, "the padding, once");
    eventually(|| server.registry().members(&"lobby".parse().unwrap()) == 2).await;
    eventually(|| server.registry().members(&"other".parse().unwrap()) == 2).await;

    send_text(&mut bob, "in the lobby").await;
    send_text(&mut carl, "elsewhere").await;
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let event = stream.next_event().await.expect("the messages");
        if let ServerEvent::Message(message) = event.server_event() {
            heard.push((event.member, message.text, event.id.is_some()));
        }
    }
    heard.sort();
    assert_eq!(heard, [(Some(0), "in the lobby".to_owned(), true), (Some(1), "elsewhere".to_owned(), true)]);

    // Gone with its stream: both members leave.
    drop(stream);
    eventually(|| server.registry().members(&"lobby".parse().unwrap()) == 1).await;
    eventually(|| server.registry().members(&"other".parse().unwrap()) == 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_shared_stream_is_refused_what_each_member_would_be() {
    let server = start_default().await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let bearer = bearer(ann);
    let open = |query: String| {
        let bearer = bearer.clone();
        async move { SseClient::open(addr, &format!("/api/events/{ann}?{query}"), &[("Authorization", &bearer)]).await.0 }
    };
    assert_eq!(open(String::new()).await, 400, "no member");
    let seventeen: Vec<String> = (0..17).map(|n| member_query(&format!("group=room-{n}"))).collect();
    assert_eq!(open(seventeen.join("&")).await, 400, "more than 16");
    assert_eq!(open(member_query("group=Not%20a%20name")).await, 400, "a bad group");
    let others = format!("/api/events/{}?{}", Uuid::new_v4(), member_query("group=lobby"));
    assert_eq!(SseClient::open(addr, &others, &[("Authorization", &bearer)]).await.0, 403, "another's client id");
    assert_eq!(SseClient::open(addr, &format!("/api/events/{ann}?m=group%3Dlobby"), &[]).await.0, 401);
    let tokenless_poll = format!("/api/events/{ann}?m=group%3Dlobby&poll=1");
    assert_eq!(SseClient::open(addr, &tokenless_poll, &[]).await.0, 401, "polls need a token");
    let (one, other) = (roomcast_shared::ClientId(Uuid::new_v4()), roomcast_shared::ClientId(Uuid::new_v4()));
    let dm = member_query(&format!("group={}&with={}", roomcast_shared::GroupName::direct(one, other), other.0));
    assert_eq!(open(format!("{}&{dm}", member_query("group=lobby"))).await, 403, "someone else's direct messages");
    eventually(|| server.registry().members(&"lobby".parse().unwrap()) == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_nobody_reads_is_closed_with_1013_while_the_group_goes_on() {
    let server = start(firehose_config()).await;
    let addr = server.local_addr();

    // An event stream with a tiny receive buffer, never read.
    let ann = Uuid::new_v4();
    let mut stalled = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
    let request = format!(
        "GET /api/events/firehose/{ann} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        bearer(ann)
    );
    tokio::io::AsyncWriteExt::write_all(&mut stalled, request.as_bytes()).await.unwrap();
    let mut reader = connect_raw(addr, "firehose").await;
    let mut publisher = connect_raw(addr, "firehose").await;
    let group = "firehose".parse().unwrap();
    eventually(|| server.registry().members(&group) == 3).await;

    let payload = "p".repeat(16 * 1024);
    let mut gone_at = None;
    for i in 0..2_000 {
        firehose_message(i, &payload, &mut publisher, &mut reader).await;
        if server.registry().members(&group) == 2 {
            gone_at = Some(i);
            break;
        }
    }
    let gone_at = gone_at.expect("the stream nobody reads was never closed");
    assert!(gone_at < 500, "closed only after {gone_at} messages");

    // Read now: its last words are the close a socket would get.
    let mut body = Vec::new();
    let read = tokio::time::timeout(PATIENCE, tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut body)).await;
    assert!(read.is_ok(), "the response ends");
    let body = String::from_utf8_lossy(&body);
    let close = body.rfind("event: close").map(|at| &body[at..]).expect("an `event: close` at the end");
    assert!(close.contains("\"code\":1013"), "{close}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_shared_stream_long_polls_every_member_in_one_session() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut bob = connect_json(addr, "lobby").await;
    let mut carl = connect_json(addr, "other").await;
    let ann = Uuid::new_v4();
    let members = [member_query("group=lobby&name=Ann"), member_query("group=other")].join("&");
    let base = format!("/api/events/{ann}?{members}&poll=1");

    // The first poll opens both members: each one's welcome, named.
    let (mut events, mut session) = poll_path(addr, ann, &base).await;
    let synced = |events: &[SseEvent]| {
        events.iter().filter(|event| matches!(event.server_event(), ServerEvent::Synced { .. })).count()
    };
    while synced(&events) < 2 {
        let (more, next) = poll_path(addr, ann, &format!("{base}&session={}", session.expect("a session"))).await;
        events.extend(more);
        session = next;
    }
    let welcomed: Vec<Option<usize>> = events
        .iter()
        .filter(|event| matches!(event.server_event(), ServerEvent::Welcome(_)))
        .map(|event| event.member)
        .collect();
    assert_eq!(welcomed.len(), 2, "{events:?}");
    assert!(welcomed.contains(&Some(0)) && welcomed.contains(&Some(1)));
    let session = session.expect("the session goes on");

    send_text(&mut bob, "in the lobby").await;
    send_text(&mut carl, "elsewhere").await;
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let (events, next) = poll_path(addr, ann, &format!("{base}&session={session}")).await;
        assert_eq!(next.as_deref(), Some(session.as_str()), "the same session");
        for event in events {
            if let ServerEvent::Message(message) = event.server_event() {
                heard.push((event.member, message.text));
            }
        }
    }
    heard.sort();
    assert_eq!(heard, [(Some(0), "in the lobby".to_owned()), (Some(1), "elsewhere".to_owned())]);
    eventually(|| server.registry().members(&"lobby".parse().unwrap()) == 2).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_session_nobody_polls_leaves_its_quiet_rooms() {
    let server = start_pinging_every_second().await;
    let addr = server.local_addr();
    let ann = Uuid::new_v4();
    let (_, session) = poll(addr, ann, "").await;
    assert!(session.is_some(), "a session to poll next");
    let both = [member_query("group=lobby"), member_query("group=other")].join("&");
    let (_, shared) = poll_path(addr, ann, &format!("/api/events/{ann}?{both}&poll=1")).await;
    assert!(shared.is_some(), "a shared session to poll next");
    eventually(|| server.registry().members(&"other".parse().unwrap()) == 1).await;
    // Nobody polls again and nothing is said in either room: after the idle
    // timeout both sessions go, and their members leave.
    eventually(|| server.registry().members(&"lobby".parse().unwrap()) == 0).await;
    eventually(|| server.registry().members(&"other".parse().unwrap()) == 0).await;
    server.shutdown().await;
}
