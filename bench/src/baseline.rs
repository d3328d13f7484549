//! BASELINE, not Roomcast: the minimal tokio-tungstenite broadcast server
//! that Roomcast is measured against (the design of most tutorial chat
//! servers). Every connection is in one group; each text frame received is
//! sent to every connection, the sender included, as a clone of one
//! `Message` through an unbounded queue per member, written one frame and
//! one flush at a time. No protocol, no sequence numbers, no history, no
//! limits: the cost floor of "broadcast over tokio-tungstenite".

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
                while let Some(message) = receiver.recv().await {
                    if sink.send(message).await.is_err() {
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
