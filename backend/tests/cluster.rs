//! Many nodes, one system: nodes on one real Redis (a private
//! `redis-server` on a free port, AOF on) deliver every message to clients
//! on every node in one order, deduplicate across nodes, fill what pub/sub
//! loses, and ride out Redis going away, restarting or starting over.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use roomcast_backend::history::broker::DeliveryError;
use roomcast_backend::Failure;
use roomcast_shared::{ClientCommand, ErrorCode, MessageId, ServerEvent};
use roomcast_testkit::LocalRedis;
use support::*;
use uuid::Uuid;

fn redis() -> LocalRedis {
    LocalRedis::start().expect("a local redis-server (the test script installs Debian's)")
}

/// The next `ack`, or the code of the next `error`.
async fn outcome(ws: &mut Client) -> Result<(MessageId, u64), ErrorCode> {
    match next_answer(ws).await {
        ServerEvent::Ack { id, seq } => Ok((id, seq)),
        ServerEvent::Error { code, .. } => Err(code),
        other => unreachable!("an answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_message_to_every_client_in_one_order() {
    let redis = redis();
    let nodes = [
        start_node(&redis.url(), |_| {}).await,
        start_node(&redis.url(), |_| {}).await,
        start_node(&redis.url(), |_| {}).await,
    ];
    let mut readers = Vec::new();
    for node in &nodes {
        readers.push(connect_json(node.local_addr(), "everywhere").await);
    }
    let mut publishers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let mut ws = connect_json(node.local_addr(), "everywhere").await;
        publishers.push(tokio::spawn(async move {
            let texts: Vec<String> = (0..30).map(|i| format!("node{n}-{i}")).collect();
            publish_all(&mut ws, &texts, 8).await
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let mut orders = Vec::new();
    for reader in &mut readers {
        let messages = collect_chats(reader, 90).await;
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=90).collect::<Vec<_>>(), "every number, once, in order");
        orders.push(messages.into_iter().map(|m| m.text).collect::<Vec<_>>());
    }
    assert!(orders.windows(2).all(|pair| pair[0] == pair[1]), "one order on every node");
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_to_another_node_gets_the_original_number() {
    let redis = redis();
    let (first, second) = (start_node(&redis.url(), |_| {}).await, start_node(&redis.url(), |_| {}).await);
    let mut reader = connect_json(second.local_addr(), "once").await;
    let mut a = connect_json(first.local_addr(), "once").await;
    let id = send_text(&mut a, "only once").await;
    let (_, seq) = outcome(&mut a).await.unwrap();
    let mut b = connect_json(second.local_addr(), "once").await;
    send_command(&mut b, &ClientCommand::Send { id, text: "only once".into() }).await;
    assert_eq!(outcome(&mut b).await, Ok((id, seq)));
    send_text(&mut b, "next").await;
    let messages = collect_chats(&mut reader, 2).await;
    assert_eq!(messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["only once", "next"]);
    first.shutdown().await;
    second.shutdown().await;
}

/// Announcements that never arrive (here: a message stored with its
/// announcement sent to a channel nobody listens on, and the pub/sub
/// connections killed) are found in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_pub_sub_loses_is_filled_from_the_stream() {
    let redis = redis();
    let node = start_node(&redis.url(), |_| {}).await;
    let mut reader = connect_json(node.local_addr(), "lossy").await;
    let mut writer = connect_json(node.local_addr(), "lossy").await;
    publish_all(&mut writer, &["first".into()], 1).await;
    assert_eq!(next_chat(&mut reader).await.text, "first");

    // A quiet tail: stored, never announced. The head check finds it.
    let script = redis::Script::new(include_str!("../src/history/redis_store/publish.lua"));
    let id = Uuid::new_v4().to_string();
    let json = format!(
        r#"{{"group":"lossy","seq":0,"id":"{id}","from":{{"client_id":"{id}","verified":true}},"text":"never announced","ts":1}}"#
    );
    let mut connection = redis.connection();
    let epoch: String = redis::cmd("GET").arg("rc:{lossy}:epoch").query(&mut connection).unwrap();
    let _: redis::Value = script
        .key("rc:{lossy}:epoch")
        .key("rc:{lossy}:seq")
        .key("rc:{lossy}:log")
        .key("rc:{lossy}:bytes")
        .key("rc:{lossy}:ids")
        .key(format!("rc:{{lossy}}:old:{id}"))
        .key("rc:groups")
        .key("rc:{lossy}:base")
        .arg("lossy")
        .arg(&id)
        .arg(json)
        .arg(15)
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(0)
        .arg(86_400_000u64)
        .arg("unused")
        .arg(&epoch)
        .arg(0)
        .arg("rc:{lossy}:nowhere")
        .arg("00")
        .invoke(&mut connection)
        .unwrap();
    let message = next_chat(&mut reader).await;
    assert_eq!((message.seq, message.text.as_str()), (2, "never announced"));

    // The pub/sub connection killed: what is published meanwhile comes.
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut connection).unwrap();
    publish_all(&mut writer, &["after the cut".into(), "and more".into()], 2).await;
    let messages = collect_chats(&mut reader, 2).await;
    assert_eq!(
        messages.iter().map(|m| (m.seq, m.text.as_str())).collect::<Vec<_>>(),
        [(3, "after the cut"), (4, "and more")]
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_with_its_aof_continues_the_numbers() {
    let mut redis = redis();
    let mut connection = redis.connection();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("always").query(&mut connection).unwrap();
    let node = start_node(&redis.url(), |_| {}).await;
    let mut ws = connect_json(node.local_addr(), "durable").await;
    let acked = publish_all(&mut ws, &(0..10).map(|i| format!("m{i}")).collect::<Vec<_>>(), 10).await;
    redis.kill();
    // Down: a send is refused as retryable, a new socket gets 503.
    send_text(&mut ws, "while down").await;
    assert_eq!(outcome(&mut ws).await, Err(ErrorCode::Unavailable));
    eventually(|| !node.history().ready()).await;
    let url = ws_url(node.local_addr(), "durable", Uuid::new_v4());
    let refused = upgrade_over(tcp_from([127, 0, 0, 1], node.local_addr(), None).await, &url, &[]).await;
    assert_eq!(refused.err(), Some(503));

    redis.restart().unwrap();
    eventually(|| node.history().ready()).await;
    let stored = stored_history(node.local_addr(), "durable").await;
    assert_eq!(
        stored.iter().map(|m| (m.id, m.seq)).collect::<Vec<_>>(),
        acked,
        "every acknowledged message, as numbered"
    );
    let mut again = connect_json(node.local_addr(), "durable").await;
    let (_, seq) = publish_all(&mut again, &["after".into()], 1).await[0];
    assert_eq!(seq, 11, "numbers continue");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed_is_a_new_epoch_and_a_reset_never_a_reused_number() {
    let redis = redis();
    let (first, second) = (start_node(&redis.url(), |_| {}).await, start_node(&redis.url(), |_| {}).await);
    let (mut member, welcome, _) = connect_json_welcomed(second.local_addr(), "flushed", "").await;
    let mut writer = connect_json(first.local_addr(), "flushed").await;
    publish_all(&mut writer, &["a".into(), "b".into()], 2).await;
    assert_eq!(collect_chats(&mut member, 2).await.len(), 2);
    let old_epoch = redis.connection().get_epoch("flushed");
    let _: () = redis::cmd("FLUSHALL").query(&mut redis.connection()).unwrap();
    publish_all(&mut writer, &["c".into()], 1).await;
    let new_epoch = redis.connection().get_epoch("flushed");
    assert_ne!(old_epoch, new_epoch);
    assert!(welcome.epoch.is_empty() || welcome.epoch == old_epoch);
    assert_eq!(next_event(&mut member).await, ServerEvent::Reset { epoch: new_epoch.clone() });
    assert_eq!(next_event(&mut member).await, ServerEvent::Synced { seq: 0 });
    let message = next_chat(&mut member).await;
    assert_eq!((message.seq, message.text.as_str()), (1, "c"));
    // A client coming back with the old epoch is told too.
    let (_, events) = connect_json_with(first.local_addr(), "flushed", &format!("since=2&epoch={old_epoch}")).await;
    assert_eq!(events.first(), Some(&ServerEvent::Reset { epoch: new_epoch }));
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_api_works_on_every_node_with_one_idempotency() {
    let redis = redis();
    let key = "cluster-api-key-0123456789abcdef0123";
    let with_key = |config: &mut roomcast_backend::Config| config.api_key = Some(key.to_owned());
    let (first, second) = (start_node(&redis.url(), with_key).await, start_node(&redis.url(), with_key).await);
    let bearer = format!("Bearer {key}");
    let headers =
        [("Authorization", bearer.as_str()), ("Idempotency-Key", "deploy-77"), ("Content-Type", "application/json")];
    let path = "/api/groups/api/messages";
    let (status, body) = raw_request(first.local_addr(), "POST", path, &headers, r#"{"text":"deployed"}"#).await;
    assert_eq!(status, 201, "{body}");
    let (status, again) = raw_request(second.local_addr(), "POST", path, &headers, r#"{"text":"deployed"}"#).await;
    assert_eq!(status, 200, "{again}");
    let (one, two): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&body).unwrap(), serde_json::from_str(&again).unwrap());
    assert_eq!((one["seq"].clone(), one["epoch"].clone()), (two["seq"].clone(), two["epoch"].clone()));
    assert_eq!(stored_history(second.local_addr(), "api").await.len(), 1);
    first.shutdown().await;
    second.shutdown().await;
}

trait EpochOf {
    fn get_epoch(&mut self, group: &str) -> String;
}

impl EpochOf for redis::Connection {
    fn get_epoch(&mut self, group: &str) -> String {
        redis::cmd("GET")
            .arg(format!("rc:{{{group}}}:epoch"))
            .query::<Option<String>>(self)
            .unwrap()
            .unwrap_or_default()
    }
}

/// Sends `texts` (ids made up front) to the first node that takes them,
/// resending whatever was not acknowledged when a node goes away, as the
/// app does. Returns each id's number.
async fn publish_with_failover(nodes: Vec<SocketAddr>, texts: Vec<String>) -> HashMap<MessageId, u64> {
    let ids: Vec<MessageId> = texts.iter().map(|_| MessageId(Uuid::new_v4())).collect();
    let mut acked: HashMap<MessageId, u64> = HashMap::new();
    for addr in nodes.iter().cycle() {
        if acked.len() == texts.len() {
            break;
        }
        let url = ws_url(*addr, "failover", Uuid::new_v4());
        let Ok(mut ws) = try_connect_json(&url).await else { continue };
        let mut in_flight = 0usize;
        let mut next = 0;
        'connection: loop {
            while in_flight < 8 && next < texts.len() {
                if !acked.contains_key(&ids[next]) {
                    let command = ClientCommand::Send { id: ids[next], text: texts[next].clone() };
                    if ws.send(Message::text(command.encode())).await.is_err() {
                        break 'connection;
                    }
                    in_flight += 1;
                }
                next += 1;
            }
            if acked.len() == texts.len() {
                return acked;
            }
            match tokio::time::timeout(PATIENCE, ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => match ServerEvent::decode(&text) {
                    Ok(ServerEvent::Ack { id, seq }) => {
                        acked.insert(id, seq);
                        in_flight -= 1;
                    }
                    Ok(ServerEvent::Error { .. }) => break 'connection,
                    _ => {}
                },
                Ok(Some(Ok(_))) => {}
                _ => break 'connection,
            }
        }
    }
    acked
}

/// A JSON connection to `url` after its replay, or the failure.
async fn try_connect_json(url: &str) -> Result<Client, ()> {
    let mut ws = open_json(url).await.map_err(drop)?;
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await {
            Ok(Some(Ok(Message::Text(text))))
                if matches!(ServerEvent::decode(&text), Ok(ServerEvent::Synced { .. })) =>
            {
                return Ok(ws)
            }
            Ok(Some(Ok(_))) => {}
            _ => return Err(()),
        }
    }
}

/// `kill -9` of a node while publishers send on every node: the clients of
/// the dead node reconnect to the other with `since` and end with every
/// message, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_nothing_and_duplicates_nothing() {
    failover(false).await;
}

/// SIGTERM of a node (a rolling restart): its clients are closed with 1012
/// and land on the other node with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_mid_stream_sends_its_clients_to_the_others_with_nothing_lost() {
    failover(true).await;
}

/// Publishers on both nodes and a reader on the first; the first node goes
/// (SIGTERM if `graceful`, else SIGKILL) in the middle of the stream.
async fn failover(graceful: bool) {
    let redis = redis();
    let url = redis.url();
    let database = std::env::temp_dir().join(format!("roomcast-unused-{}.sqlite3", Uuid::new_v4()));
    let args = ["--redis", url.as_str(), "--publish-rate", "0", "--max-connections-per-ip", "0"];
    let (addr_a, addr_b) = (free_addr(), free_addr());
    let node_a = ServerProcess::start(addr_a, &database, &args).await;
    let node_b = ServerProcess::start(addr_b, &database, &args).await;

    // A reader on A that moves to B when A dies, resuming with since/epoch.
    let reader = tokio::spawn(async move {
        let mut seqs: Vec<u64> = Vec::new();
        let mut closes: Vec<u16> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut epoch = String::new();
        for addr in [addr_a, addr_b, addr_b, addr_b] {
            let query = match seqs.last() {
                Some(last) => format!("since={last}&epoch={epoch}"),
                None => String::new(),
            };
            let url = format!("{}&{query}", ws_url(addr, "failover", Uuid::new_v4()));
            let Ok(mut ws) = open_json(&url).await else { continue };
            while let Ok(Some(Ok(frame))) = tokio::time::timeout(PATIENCE, ws.next()).await {
                if let Message::Close(Some(close)) = &frame {
                    closes.push(close.code.into());
                }
                let Message::Text(text) = frame else { continue };
                match ServerEvent::decode(&text) {
                    Ok(ServerEvent::Welcome(welcome)) if !welcome.epoch.is_empty() => epoch = welcome.epoch,
                    Ok(ServerEvent::Message(message)) => {
                        assert!(ids.insert(message.id), "a message came twice: {}", message.seq);
                        seqs.push(message.seq);
                        if seqs.len() == 400 {
                            return (seqs, closes);
                        }
                    }
                    Ok(ServerEvent::Gap { from, to }) => panic!("nothing may be lost: gap {from}..={to}"),
                    // The group's creation tells the reader its epoch.
                    Ok(ServerEvent::Reset { epoch: created }) if seqs.is_empty() => epoch = created,
                    Ok(ServerEvent::Reset { epoch: other }) => panic!(
                        "the history did not start over: reset to {other:?} (known {epoch:?}) on {addr} after {} messages, last {:?}",
                        seqs.len(),
                        seqs.last()
                    ),
                    _ => {}
                }
            }
        }
        (seqs, closes)
    });
    let texts = |node: &str| (0..200).map(|i| format!("{node}-{i}")).collect::<Vec<_>>();
    let on_a = tokio::spawn(publish_with_failover(vec![addr_a, addr_b], texts("a")));
    let on_b = tokio::spawn(publish_with_failover(vec![addr_b], texts("b")));
    // Let the stream run, then kill A in the middle of it.
    let mut probe = connect_json(addr_b, "failover").await;
    collect_chats(&mut probe, 60).await;
    if graceful {
        assert_eq!(node_a.terminate(Duration::from_secs(5)).await, Some(0));
    } else {
        node_a.kill_9();
    }

    let (acked_a, acked_b) = (on_a.await.unwrap(), on_b.await.unwrap());
    assert_eq!(acked_a.len() + acked_b.len(), 400, "every message acknowledged");
    let (seqs, closes) = reader.await.unwrap();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "every number once, in order, across the failover");
    if graceful {
        assert_eq!(closes, [roomcast_shared::close::SERVICE_RESTART], "told the node restarts");
    }
    let stored = stored_history(addr_b, "failover").await;
    assert_eq!(stored.len(), 400, "stored once each");
    assert_eq!(node_b.terminate(Duration::from_secs(5)).await, Some(0));
}

/// Redis lost its last messages (a crash within `appendfsync everysec`, an
/// old snapshot restored): a node whose members hold more starts a new
/// epoch above what they hold, so no number is given twice, and they are
/// told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_went_back_starts_a_new_epoch_above_what_was_seen() {
    let redis = redis();
    let (first, second) = (start_node(&redis.url(), |_| {}).await, start_node(&redis.url(), |_| {}).await);
    let mut member = connect_json(second.local_addr(), "back").await;
    let mut writer = connect_json(first.local_addr(), "back").await;
    publish_all(&mut writer, &(1..=5).map(|i| format!("m{i}")).collect::<Vec<_>>(), 5).await;
    assert_eq!(collect_chats(&mut member, 5).await.last().map(|m| m.seq), Some(5));
    let mut connection = redis.connection();
    let old_epoch = connection.get_epoch("back");
    // Messages 4 and 5 vanish, as if never written.
    let _: () = redis::cmd("XDEL").arg("rc:{back}:log").arg("4-0").arg("5-0").query(&mut connection).unwrap();
    let _: () = redis::cmd("SET").arg("rc:{back}:seq").arg(3).query(&mut connection).unwrap();
    eventually(|| redis.connection().get_epoch("back") != old_epoch).await;

    publish_all(&mut writer, &["after".into()], 1).await;
    let new_epoch = connection.get_epoch("back");
    assert_eq!(next_event(&mut member).await, ServerEvent::Reset { epoch: new_epoch.clone() });
    assert_eq!(next_event(&mut member).await, ServerEvent::Synced { seq: 5 });
    let message = next_chat(&mut member).await;
    assert_eq!((message.seq, message.text.as_str()), (6, "after"), "above every number seen");
    let (_, events) = connect_json_with(second.local_addr(), "back", &format!("since=5&epoch={old_epoch}")).await;
    assert_eq!(events.first(), Some(&ServerEvent::Reset { epoch: new_epoch }));
    first.shutdown().await;
    second.shutdown().await;
}

/// `rediss://` with a password in the URL: two nodes on a Redis that
/// speaks only TLS and asks for a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reach_redis_over_tls_with_a_password() {
    let redis = LocalRedis::start_secured("s3cret-redis-password").expect("a local redis-server with TLS");
    assert!(redis.url().starts_with("rediss://"));
    let (first, second) = (start_node(&redis.url(), |_| {}).await, start_node(&redis.url(), |_| {}).await);
    let mut reader = connect_json(second.local_addr(), "secure").await;
    let mut writer = connect_json(first.local_addr(), "secure").await;
    publish_all(&mut writer, &["over TLS".into()], 1).await;
    assert_eq!(next_chat(&mut reader).await.text, "over TLS");
    first.shutdown().await;
    second.shutdown().await;
}

/// A node listens on a group's channel while it has members there, and a
/// few seconds more after the last one left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_listens_to_the_groups_it_has_members_in() {
    let redis = redis();
    let node = start_node(&redis.url(), |_| {}).await;
    let mut connection = redis.connection();
    // The groups' channels (`rc:{group}:pub`); the node's control channel
    // (`rc:control`, see `signals.rs`) is always listened to.
    let mut channels =
        || -> Vec<String> { redis::cmd("PUBSUB").arg("CHANNELS").arg("rc:{*}:pub").query(&mut connection).unwrap() };
    assert!(channels().is_empty(), "no members, no subscriptions");
    let member = connect_json(node.local_addr(), "listened").await;
    eventually(|| channels() == ["rc:{listened}:pub"]).await;
    drop(member);
    eventually(|| node.registry().members(&"listened".parse().unwrap()) == 0).await;
    assert_eq!(channels(), ["rc:{listened}:pub"], "kept for a while: members come back");
    // Unsubscribed once the linger (5 s) is over, within `PATIENCE`.
    eventually(|| channels().is_empty()).await;
    node.shutdown().await;
}

/// A revocation made through one node closes the identity's sockets on
/// the others (4403, within about a second) and every node refuses its
/// tokens from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_node() {
    const KEY: &str = "cluster-revocation-api-key-0123456789abcdef";
    let redis = redis();
    let first = start_node(&redis.url(), |config| config.api_key = Some(KEY.to_owned())).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let mallory = Uuid::new_v4();
    let token = token_for(mallory);
    let url = |addr| format!("ws://{addr}/ws/lobby/{mallory}?token={token}");
    let mut elsewhere = connect_json_url(&url(second.local_addr()), "lobby").await;
    let _bystander = connect_json(second.local_addr(), "lobby").await;
    let revoke = format!("/api/identities/{mallory}/revoke");
    let key = format!("Bearer {KEY}");
    let (status, body) = raw_request(first.local_addr(), "POST", &revoke, &[("Authorization", &key)], "").await;
    assert_eq!(status, 200, "{body}");
    let revoked_at = tokio::time::Instant::now();
    assert_eq!(close_code(&mut elsewhere).await, roomcast_shared::close::IDENTITY_REVOKED);
    assert!(revoked_at.elapsed() < std::time::Duration::from_secs(3), "closed after {:?}", revoked_at.elapsed());
    for node in [&first, &second] {
        let refused = open_json(&url(node.local_addr())).await.expect_err("revoked everywhere");
        assert!(refused.to_string().contains("401"), "{refused}");
    }
    assert_eq!(second.registry().members(&"lobby".parse().unwrap()), 1, "others stay");
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn typing_on_one_node_reaches_a_member_on_another() {
    let redis = redis();
    let first = start_node(&redis.url(), |_| {}).await;
    let second = start_node(&redis.url(), |_| {}).await;
    let typist = Uuid::new_v4();
    let mut ann = connect_json_as(first.local_addr(), "lobby", typist, Some("Ann")).await;
    let mut bob = connect_json(second.local_addr(), "lobby").await;
    let expected = ServerEvent::Typing {
        from: roomcast_shared::Sender {
            client_id: roomcast_shared::ClientId(typist),
            name: Some("Ann".parse().unwrap()),
            verified: true,
        },
    };
    // The second node's control channel may not listen yet (and pub/sub
    // keeps nothing for it): type again, past the rate, until it hears.
    let mut heard = None;
    for _ in 0..5 {
        send_command(&mut ann, &ClientCommand::Typing).await;
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(2_200), next_event(&mut bob)).await {
            heard = Some(event);
            break;
        }
    }
    assert_eq!(heard, Some(expected));
    first.shutdown().await;
    second.shutdown().await;
}

/// Makes Redis refuse every channel to its default user (the nodes' user):
/// it drops the node's pub/sub connection, and every subscribe after it is
/// `NOPERM`.
fn refuse_channels(redis: &LocalRedis) {
    let mut connection = redis.connection();
    let _: () = redis::cmd("ACL").arg("SETUSER").arg("default").arg("resetchannels").query(&mut connection).unwrap();
}

/// Waits until some node listens on `group`'s channel.
async fn until_subscribed(redis: &LocalRedis, group: &str) {
    let mut connection = redis.connection();
    let channel = format!("rc:{{{group}}}:pub");
    eventually(|| {
        let counts: Vec<(String, u64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query(&mut connection).unwrap();
        counts.iter().any(|(_, count)| *count > 0)
    })
    .await;
}

/// A node Redis will not let listen (an ACL without channels: it would be
/// deaf for ever) stops by itself as on SIGTERM: its members get 1012, it
/// is stopped within the close grace (and the half second after it), and
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_redis_will_not_let_listen_shuts_down_within_the_close_grace() {
    let redis = redis();
    let server = start_node(&redis.url(), |_| {}).await;
    let mut member = connect_json(server.local_addr(), "deaf").await;
    // One that never reads: its closing handshake takes the whole grace.
    let _silent = connect_json(server.local_addr(), "deaf").await;
    until_subscribed(&redis, "deaf").await;
    refuse_channels(&redis);
    tokio::time::timeout(PATIENCE, server.failed()).await.expect("the server stops by itself");
    let stopped = tokio::time::Instant::now();
    assert_eq!(close_code(&mut member).await, roomcast_shared::close::SERVICE_RESTART);
    let failure = server.stop().await.expect_err("it says why it stopped");
    let grace = test_config().close_grace;
    assert!(stopped.elapsed() < grace + Duration::from_millis(900), "stopped in {:?}", stopped.elapsed());
    assert!(matches!(failure, Failure::Delivery(DeliveryError::Refused(_))), "{failure}");
}

/// The binary: a node Redis will not let listen closes its clients with
/// 1012 and exits with status 70, within the close grace; a node merely
/// cut off from Redis keeps trying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_redis_will_not_let_listen_exits_70() {
    let redis = redis();
    let url = redis.url();
    let database = std::env::temp_dir().join(format!("roomcast-unused-{}.sqlite3", Uuid::new_v4()));
    let args = ["--redis", url.as_str(), "--close-grace", "1s"];
    let mut node = ServerProcess::start(free_addr(), &database, &args).await;
    let mut member = connect_json(node.addr, "deaf").await;
    until_subscribed(&redis, "deaf").await;
    let mut connection = redis.connection();
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut connection).unwrap();
    until_subscribed(&redis, "deaf").await;
    assert_eq!(node.child.try_wait().unwrap(), None, "a lost connection is made again");

    refuse_channels(&redis);
    let refused = tokio::time::Instant::now();
    assert_eq!(close_code(&mut member).await, roomcast_shared::close::SERVICE_RESTART);
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(refused.elapsed() < PATIENCE, "the node did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(70));
    // Noticed within a retry (200 ms), then the grace and its half second.
    assert!(refused.elapsed() < Duration::from_millis(2500), "exited {:?} after the refusal", refused.elapsed());
}
