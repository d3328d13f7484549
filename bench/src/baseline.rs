//! BASELINE, not Roomcast: a lean tokio-tungstenite broadcast server that
//! Roomcast is measured against. Every connection is in one group; each
//! text frame received is sent to every connection, the sender included,
//! as a clone of one `Message` through an unbounded queue per member. Each
//! member's writer task drains everything queued and flushes once per
//! batch (the one thing that separates a fast broadcast server from a
//! tutorial one, which flushes every frame). No protocol, no sequence
//! numbers, no history, no limits: the cost floor of "broadcast over
//! tokio-tungstenite", so that every ratio against it is honest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Members = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

pub async fn run(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("baseline broadcast server listening on {}", listener.local_addr()?);
    let members: Members = Arc::default();
    let next_id = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        let (members, id) = (members.clone(), next_id.fetch_add(1, Ordering::Relaxed));
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(socket) = tokio_tungstenite::accept_async(stream).await else { return };
            let (mut sink, mut stream) = socket.split();
            let (sender, mut receiver) = mpsc::unbounded_channel();
            members.lock().expect("members lock").insert(id, sender);
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
                if message.is_text() || message.is_binary() {
                    for member in members.lock().expect("members lock").values() {
                        let _ = member.send(message.clone());
                    }
                }
            }
            members.lock().expect("members lock").remove(&id);
            writer.abort();
        });
    }
}
