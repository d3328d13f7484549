//! The single writer: every published message passes through here.
//!
//! A dedicated thread takes whatever publishes are waiting (up to a batch),
//! stores them in one transaction (group commit: one disk sync for the whole
//! batch), then, in order, fans each stored message out to its group and
//! acknowledges it to its sender. Nothing is delivered or acknowledged before
//! it is stored, and fan-out in commit order keeps every member's queue in
//! sequence order. Publishers do not wait for the commit: the acknowledgement
//! arrives in their queue, so a connection can have many sends in flight.

use std::sync::Arc;
use std::thread::JoinHandle;

use roomcast_shared::{ChatMessage, ErrorCode, MessageId, ServerEvent};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::store::{Appending, Outcome, Store};
use super::unix_millis;
use crate::queue::{MemberQueue, Outbound};
use crate::registry::Registry;

/// Most publishes stored in one transaction.
const MAX_BATCH: usize = 512;
/// Publishes that may wait for the writer before senders are held back.
const QUEUE_DEPTH: usize = 8192;

/// A message to store and deliver. `message.seq` and `message.ts` are
/// filled in by the sequencer.
#[derive(Debug)]
pub struct Publish {
    pub message: ChatMessage,
    /// Where the `ack` (or the `error`) goes: the sender's queue, for JSON
    /// senders.
    pub reply_to: Option<Arc<MemberQueue>>,
}

/// The writer has stopped (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the history writer has stopped")]
pub struct Stopped;

/// A handle to submit publishes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    sender: mpsc::Sender<Publish>,
}

impl Sequencer {
    /// Starts the writer thread. It ends once every handle is dropped and
    /// the publishes already submitted are stored and delivered.
    pub fn start(store: Arc<dyn Store>, registry: Arc<Registry>) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("roomcast-sequencer".into())
            .spawn(move || run(store.as_ref(), &registry, receiver))?;
        Ok((Self { sender }, thread))
    }

    /// Submits a publish; waits only while the writer is [`QUEUE_DEPTH`]
    /// publishes behind, which holds the sender's socket back.
    pub async fn submit(&self, publish: Publish) -> Result<(), Stopped> {
        self.sender.send(publish).await.map_err(|_| Stopped)
    }
}

fn run(store: &dyn Store, registry: &Registry, mut receiver: mpsc::Receiver<Publish>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(publish) => batch.push(publish),
                Err(_) => break,
            }
        }
        commit(store, registry, &mut batch);
        batch.clear();
    }
}

fn commit(store: &dyn Store, registry: &Registry, batch: &mut Vec<Publish>) {
    let ts = unix_millis();
    let (mut items, replies): (Vec<Appending>, Vec<_>) = batch
        .drain(..)
        .map(|Publish { mut message, reply_to }| {
            message.ts = ts;
            (Appending { message, outcome: Outcome::Pending }, reply_to)
        })
        .unzip();
    if let Err(err) = store.append(&mut items) {
        tracing::error!(%err, messages = items.len(), "cannot store messages; senders are told to retry");
    }
    for (item, reply_to) in items.into_iter().zip(replies) {
        let id = item.message.id;
        let reply = match item.outcome {
            Outcome::New => {
                let seq = item.message.seq;
                registry.deliver(item.message);
                ServerEvent::Ack { id, seq }
            }
            Outcome::Duplicate(seq) => ServerEvent::Ack { id, seq },
            Outcome::Pending => unavailable(id),
        };
        if let Some(queue) = reply_to {
            if queue.push(Outbound::unsequenced(Message::text(reply.encode()))).is_err() {
                queue.evict();
            }
        }
    }
}

fn unavailable(id: MessageId) -> ServerEvent {
    ServerEvent::Error {
        code: ErrorCode::Unavailable,
        message: "the message could not be stored; send it again".into(),
        id: Some(id),
    }
}

