//! Long polling, for networks whose proxies hold a streamed response back:
//! a session's connection lives on between requests (its events wait, a
//! bounded number of them), and each poll answers with what came, in the
//! stream's own format, as soon as something did, or empty after
//! `--long-poll-timeout`. A session nobody polls for the idle timeout is
//! dropped (its connection leaves). A poll that names a session this node
//! does not hold (another node's, or one dropped) opens a new one from the
//! client's own position: no state is shared between nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use roomcast_shared::ClientId;
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::locks::lock;

/// Most bytes one poll answers with (more waits for the next).
pub const MAX_POLL_BYTES: usize = 64 * 1024;
/// Most sessions a node holds at once (each also counts against its
/// address's cap).
pub const MAX_SESSIONS: usize = 10_000;

type Chunks = Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>;

/// This node's long-poll sessions.
#[derive(Debug)]
pub struct Polls {
    sessions: Mutex<HashMap<Uuid, Held>>,
    /// How long a poll waits for something to answer.
    within: Duration,
    /// How long a session waits for its next poll.
    idle: Duration,
    sweeping: Once,
}

#[derive(Debug)]
struct Held {
    owner: ClientId,
    chunks: Chunks,
    last_poll: Instant,
}

/// A poll's answer.
#[derive(Debug)]
pub struct Polled {
    /// Events, as a stream would have them (possibly none).
    pub body: Bytes,
    /// The connection closed (the body ends with its `event: close`): the
    /// session is gone.
    pub ended: bool,
}

impl Polls {
    pub fn new(within: Duration, idle: Duration) -> Arc<Self> {
        Arc::new(Self { sessions: Mutex::default(), within, idle, sweeping: Once::new() })
    }

    /// Whether another session fits.
    pub fn has_room(&self) -> bool {
        lock(&self.sessions).len() < MAX_SESSIONS
    }

    /// `owner`'s session `id`, if this node holds it.
    pub fn find(&self, id: Uuid, owner: ClientId) -> Option<Uuid> {
        lock(&self.sessions).get(&id).filter(|held| held.owner == owner).map(|_| id)
    }

    /// Holds a new session of `owner` whose events come as `chunks`.
    pub fn hold(self: &Arc<Self>, owner: ClientId, chunks: mpsc::Receiver<Bytes>) -> Uuid {
        self.sweeping.call_once(|| {
            tokio::spawn(sweep(Arc::downgrade(self)));
        });
        let id = Uuid::new_v4();
        let held = Held { owner, chunks: Arc::new(tokio::sync::Mutex::new(chunks)), last_poll: Instant::now() };
        lock(&self.sessions).insert(id, held);
        id
    }

    /// Waits up to the poll timeout for session `id`'s next events, then
    /// takes what else is ready, up to [`MAX_POLL_BYTES`].
    pub async fn poll(&self, id: Uuid) -> Polled {
        let Some(chunks) = self.touch(id) else { return Polled { body: Bytes::new(), ended: true } };
        let mut chunks = chunks.lock().await;
        let mut body = BytesMut::new();
        let mut ended = false;
        match tokio::time::timeout(self.within, chunks.recv()).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => ended = true,
            Err(_) => {}
        }
        while !ended && body.len() < MAX_POLL_BYTES {
            match chunks.try_recv() {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => ended = true,
            }
        }
        drop(chunks);
        self.touch(id);
        if ended {
            lock(&self.sessions).remove(&id);
        }
        Polled { body: body.freeze(), ended }
    }

    /// Notes a poll of `id` now; its events.
    fn touch(&self, id: Uuid) -> Option<Chunks> {
        let mut sessions = lock(&self.sessions);
        let held = sessions.get_mut(&id)?;
        held.last_poll = Instant::now();
        Some(held.chunks.clone())
    }

    /// Drops the sessions nobody polled for the idle timeout (one being
    /// polled now was touched when its poll began).
    fn drop_idle(&self) {
        let now = Instant::now();
        lock(&self.sessions)
            .retain(|_, held| now.duration_since(held.last_poll) < self.idle || Arc::strong_count(&held.chunks) > 1);
    }
}

/// Drops idle sessions every quarter of the idle timeout, while the node
/// holds its polls.
async fn sweep(polls: std::sync::Weak<Polls>) {
    loop {
        let Some(every) = polls.upgrade().map(|polls| polls.idle / 4) else { return };
        tokio::time::sleep(every.max(Duration::from_millis(100))).await;
        match polls.upgrade() {
            Some(polls) => polls.drop_idle(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> ClientId {
        ClientId(Uuid::new_v4())
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_answers_what_came_or_nothing_in_time_and_an_idle_session_goes() {
        let polls = Polls::new(Duration::from_secs(25), Duration::from_secs(45));
        let (events, chunks) = mpsc::channel(4);
        let ann = owner();
        let id = polls.hold(ann, chunks);
        assert_eq!(polls.find(id, ann), Some(id));
        assert_eq!(polls.find(id, owner()), None, "another identity's session is not found");
        events.send(Bytes::from("data: 1\n\n")).await.unwrap();
        events.send(Bytes::from("data: 2\n\n")).await.unwrap();
        let polled = polls.poll(id).await;
        assert_eq!((polled.body.as_ref(), polled.ended), (&b"data: 1\n\ndata: 2\n\n"[..], false));
        let started = Instant::now();
        let polled = polls.poll(id).await;
        assert!(polled.body.is_empty() && !polled.ended);
        assert_eq!(started.elapsed(), Duration::from_secs(25), "empty after the poll timeout");
        tokio::time::sleep(Duration::from_secs(46)).await;
        polls.drop_idle();
        assert_eq!(polls.find(id, ann), None, "nobody polled it for the idle timeout");
        assert!(events.is_closed(), "its connection is let go");
    }

    #[tokio::test]
    async fn a_session_whose_connection_closed_ends_with_its_last_events() {
        let polls = Polls::new(Duration::from_secs(25), Duration::from_secs(45));
        let (events, chunks) = mpsc::channel(4);
        let ann = owner();
        let id = polls.hold(ann, chunks);
        events.send(Bytes::from("event: close\ndata: {}\n\n")).await.unwrap();
        drop(events);
        let polled = polls.poll(id).await;
        assert!(polled.ended && polled.body.starts_with(b"event: close"));
        assert_eq!(polls.find(id, ann), None);
    }
}
