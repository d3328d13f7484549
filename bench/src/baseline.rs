//! BASELINE, not Roomcast: a lean tokio-tungstenite broadcast server that
//! Roomcast is measured against. Every connection is in one group; each
//! text frame received is sent to every connection, the sender included,
//! as a clone of one `Message` through an unbounded queue per member. Each
//! member's writer task drains everything queued and flushes once per
//! batch (the one thing that separates a fast broadcast server from a
//! tutorial one, which flushes every frame). No protocol, no sequence
//! numbers, no history, no limits: the cost floor of "broadcast over
//! tokio-tungstenite", so that every ratio against it is honest.
//!
//! With `--json` it speaks as much of `roomcast.v1` as a JSON member of
//! Roomcast costs, so that JSON is compared like with like: the
//! subprotocol, a `synced` on joining, each `send` numbered and broadcast
//! as the same `message` event (encoded once), and an `ack` to its sender.
//! Still nothing stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use roomcast_shared::{ChatMessage, ClientCommand, ClientId, GroupName, Sender, ServerEvent, SUBPROTOCOL};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// The members, and (JSON) the group's last sequence number.
#[derive(Default)]
struct Group {
    members: HashMap<u64, mpsc::UnboundedSender<Message>>,
    seq: u64,
}

type Members = Arc<Mutex<Group>>;

// tungstenite's handshake callback returns its own (large) error response.
#[allow(clippy::result_large_err)]
pub async fn run(listen: std::net::SocketAddr, json: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("baseline broadcast server listening on {}", listener.local_addr()?);
    let members: Members = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let (members, id) = (members.clone(), next_id.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut path = String::new();
            let accepted = tokio_tungstenite::accept_hdr_async(stream, |request: &Request, mut response: Response| {
                path = request.uri().path().to_owned();
                if json {
                    response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(SUBPROTOCOL));
                }
                Ok(response)
            })
            .await;
            let Ok(socket) = accepted else { return };
            let (mut sink, mut stream) = socket.split();
            let (sender, mut receiver) = mpsc::unbounded_channel();
            if json {
                let _ = sender.send(Message::text(ServerEvent::Synced { seq: 0 }.encode()));
            }
            let own = sender.clone();
            let from = Sender { client_id: client_of(&path), name: None, verified: true };
            members.lock().expect("members lock").members.insert(id, sender);
            let writer = tokio::spawn(async move {
                'batches: while let Some(first) = receiver.recv().await {
                    let mut next = Some(first);
                    while let Some(message) = next {
                        if sink.feed(message).await.is_err() {
                            break 'batches;
                        }
                        next = receiver.try_recv().ok();
                    }
                    if sink.flush().await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(message)) = stream.next().await {
                if json {
                    if let Message::Text(text) = &message {
                        publish(&members, text.as_str(), &from, &own);
                    }
                } else if message.is_text() || message.is_binary() {
                    for member in members.lock().expect("members lock").members.values() {
                        let _ = member.send(message.clone());
                    }
                }
            }
            members.lock().expect("members lock").members.remove(&id);
            writer.abort();
        });
    }
}

/// A JSON member's frame: a `send` numbered, broadcast as one `message`
/// event, and acknowledged to `own` (its sender's queue).
fn publish(members: &Members, frame: &str, from: &Sender, own: &mpsc::UnboundedSender<Message>) {
    let Ok(ClientCommand::Send { id, text }) = ClientCommand::decode(frame) else { return };
    let mut group = members.lock().expect("members lock");
    group.seq += 1;
    let seq = group.seq;
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
    let message = ChatMessage { group: bench_group(), seq, id, from: from.clone(), text, ts };
    let event = Message::text(ServerEvent::Message(message).encode());
    for member in group.members.values() {
        let _ = member.send(event.clone());
    }
    let _ = own.send(Message::text(ServerEvent::Ack { id, seq }.encode()));
}

/// The client id in a handshake's path (`/ws/{group}/{client_id}`), or a
/// new one.
fn client_of(path: &str) -> ClientId {
    ClientId(path.rsplit('/').next().and_then(|last| last.parse().ok()).unwrap_or_else(Uuid::new_v4))
}

fn bench_group() -> GroupName {
    "bench".parse().expect("a group name")
}
