//! The single writer: every message published on this node passes through
//! here.
//!
//! A dedicated thread takes whatever publishes are waiting (up to a batch),
//! stores them with one call to the store (SQLite: one transaction, one disk
//! sync for the whole batch; Redis: one pipeline of scripts), then, in
//! order, hands each stored message to the [`Broker`] (which delivers it to
//! its group, now or once it comes back from the store, and then sends its
//! `ack`) and answers its sender. Nothing is
//! delivered or acknowledged before it is stored, and fan-out in commit
//! order keeps every member's queue in sequence order. Publishers do not
//! wait for the commit: the answer arrives in their queue (or, for the
//! HTTP API, through a oneshot), so a connection can have many sends in
//! flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roomcast_shared::{ChatMessage, ErrorCode, MessageId, ServerEvent};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{self, OwnedPermit};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::broker::{Ack, Broker};
use super::store::{Appending, Outcome, Store};
use crate::clock::unix_millis;
use crate::frame::Frame;
use crate::metrics::{Metrics, NotNew};
use crate::queue::{MemberQueue, Outbound};

/// Most publishes stored in one transaction.
const MAX_BATCH: usize = 512;

/// A message to store and deliver. `message.seq` and `message.ts` are
/// filled in by the sequencer.
#[derive(Debug)]
pub struct Publish {
    pub message: ChatMessage,
    /// Who hears how it went.
    pub reply: Reply,
}

/// Where the outcome of a publish goes.
#[derive(Debug)]
pub enum Reply {
    /// Nobody (raw senders get no acknowledgement).
    Nobody,
    /// An `ack` or `error` event into a JSON sender's queue.
    Queue(Arc<MemberQueue>),
    /// The outcome itself (the HTTP publish API).
    Once(tokio::sync::oneshot::Sender<Answer>),
}

/// How a publish went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Stored as `seq` of `epoch`; `duplicate`: it had been before.
    Stored { seq: u64, epoch: String, duplicate: bool },
    /// Not stored: the group holds this id for another text, as `seq` of
    /// `epoch`. A client is acknowledged as for a duplicate (its ids are
    /// its own); the publish API answers `409`.
    Conflict { seq: u64, epoch: String },
    /// Not stored now (the store failed or is out of room); send it again.
    Unavailable,
    /// Not stored: it would create a group past the quota.
    OverQuota,
}

/// A publish with its share of the writer queue's byte budget, given back
/// when the writer takes it into a batch.
#[derive(Debug)]
struct Queued {
    publish: Publish,
    _bytes: OwnedSemaphorePermit,
}

/// The writer has stopped (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the history writer has stopped")]
pub struct Stopped;

/// A handle to submit publishes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequencer {
    sender: mpsc::Sender<Queued>,
    /// Bytes of message text the writer's queue may hold.
    bytes: Arc<Semaphore>,
    max_bytes: u32,
}

/// How far the writer may fall behind before publishers are held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub messages: usize,
    pub bytes: usize,
    /// Whether the writer waits for more publishes to join a batch.
    pub commit_window: CommitWindow,
}

/// How long the writer waits, once it has taken what is waiting, for more
/// publishes to join the batch (`--commit-window`, `--commit-siblings`):
/// like PostgreSQL's `commit_delay`, only when at least `siblings`
/// publishes were waiting beside the first (a sign that more are coming).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitWindow {
    /// Zero: never waits; each commit takes what is waiting.
    pub length: Duration,
    /// Publishes that must be waiting beside a batch's first for the
    /// writer to wait (0: it always waits).
    pub siblings: usize,
}

impl CommitWindow {
    /// No window: each commit takes what is waiting.
    pub const NONE: Self = Self { length: Duration::ZERO, siblings: 0 };

    /// Whether a batch of `taken` publishes (all that were waiting) waits.
    fn waits_for_more(&self, taken: usize) -> bool {
        !self.length.is_zero() && taken < MAX_BATCH && taken > self.siblings
    }
}

impl Sequencer {
    /// Starts the writer thread. It ends once every handle is dropped and
    /// the publishes already submitted are stored and delivered.
    /// `depth`: publishes (and bytes of their text) that may wait for the
    /// writer before [`try_submit`](Self::try_submit) hands them back.
    /// `broker`: where stored messages go after the commit.
    pub fn start(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        depth: Depth,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (sender, receiver) = mpsc::channel(depth.messages.max(1));
        let max_bytes = u32::try_from(depth.bytes).unwrap_or(u32::MAX).clamp(1, Semaphore::MAX_PERMITS as u32);
        let thread = std::thread::Builder::new()
            .name("roomcast-sequencer".into())
            .spawn(move || run(store.as_ref(), broker.as_ref(), &metrics, receiver, depth.commit_window))?;
        Ok((Self { sender, bytes: Arc::new(Semaphore::new(max_bytes as usize)), max_bytes }, thread))
    }

    /// Submits `message` and waits for how it went: for the writer's room
    /// when it is behind, then for the commit (an HTTP request's publish:
    /// the publish API, an HTTP session's `send`).
    pub async fn publish_and_wait(&self, message: ChatMessage) -> Result<Answer, Stopped> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        match self.try_submit(Publish { message, reply: Reply::Once(answer) })? {
            Submitted::Queued => {}
            Submitted::Backlogged(mut backlogged) => {
                std::future::poll_fn(|cx| backlogged.poll_submit(cx)).await?;
            }
        }
        answered.await.map_err(|_| Stopped)
    }

    /// Submits a publish without waiting. When the writer is its queue's
    /// depth behind, the publish comes back as
    /// [`Backlogged`], to be handed over once there is room; meanwhile its
    /// connection stops reading (which holds the sender back) but keeps
    /// writing.
    pub fn try_submit(&self, publish: Publish) -> Result<Submitted, Stopped> {
        // A message larger than the whole budget waits for all of it.
        let need = u32::try_from(publish.message.text.len()).unwrap_or(u32::MAX).clamp(1, self.max_bytes);
        let Ok(bytes) = self.bytes.clone().try_acquire_many_owned(need) else {
            return Ok(self.backlogged(publish, need));
        };
        match self.sender.try_send(Queued { publish, _bytes: bytes }) {
            Ok(()) => Ok(Submitted::Queued),
            Err(TrySendError::Full(Queued { publish, .. })) => Ok(self.backlogged(publish, need)),
            Err(TrySendError::Closed(_)) => Err(Stopped),
        }
    }

    fn backlogged(&self, publish: Publish, need: u32) -> Submitted {
        let (bytes, sender) = (self.bytes.clone(), self.sender.clone());
        let room = async move {
            let bytes = bytes.acquire_many_owned(need).await.map_err(|_| Stopped)?;
            let slot = sender.reserve_owned().await.map_err(|_| Stopped)?;
            Ok((bytes, slot))
        };
        Submitted::Backlogged(Box::new(Backlogged { publish: Some(publish), room: Box::pin(room) }))
    }
}

/// What [`Sequencer::try_submit`] did with a publish.
pub enum Submitted {
    Queued,
    /// Boxed: a connection holds at most one, and idle ones none.
    Backlogged(Box<Backlogged>),
}

/// Resolves to the publish's bytes and a reserved slot in the writer's
/// queue (or to the writer's end).
type Room = Pin<Box<dyn Future<Output = Result<(OwnedSemaphorePermit, OwnedPermit<Queued>), Stopped>> + Send>>;

/// A publish waiting for room in the writer's queue.
pub struct Backlogged {
    /// Taken once it is handed over.
    publish: Option<Publish>,
    room: Room,
}

impl Backlogged {
    /// Hands the publish over once the writer has room. Call it until it is
    /// ready, then no more.
    pub fn poll_submit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Stopped>> {
        let (bytes, slot) = ready!(self.room.as_mut().poll(cx))?;
        if let Some(publish) = self.publish.take() {
            slot.send(Queued { publish, _bytes: bytes });
        }
        Poll::Ready(Ok(()))
    }

    /// The message id to answer if the publish could not be handed over
    /// (JSON senders only).
    pub fn reply_id(&self) -> Option<MessageId> {
        self.publish
            .as_ref()
            .filter(|publish| matches!(publish.reply, Reply::Queue(_)))
            .map(|publish| publish.message.id)
    }
}

fn run(
    store: &dyn Store,
    broker: &dyn Broker,
    metrics: &Metrics,
    mut receiver: mpsc::Receiver<Queued>,
    window: CommitWindow,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        take_waiting(&mut receiver, &mut batch);
        if window.waits_for_more(batch.len()) {
            // One sleep through the window, then what came meanwhile: the
            // publishes arriving in it wake nobody. (Looking every 100 µs
            // instead cost most of what a 2 ms window saves at 500 msg/s:
            // docs/BENCHMARKS.md.)
            std::thread::sleep(window.length);
            take_waiting(&mut receiver, &mut batch);
        }
        commit(store, broker, metrics, &mut batch);
        batch.clear();
    }
}

/// Adds the publishes waiting now to `batch`, up to a full batch.
fn take_waiting(receiver: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
    while batch.len() < MAX_BATCH {
        let Ok(publish) = receiver.try_recv() else { break };
        batch.push(publish);
    }
}

fn commit(store: &dyn Store, broker: &dyn Broker, metrics: &Metrics, batch: &mut Vec<Queued>) {
    let ts = unix_millis();
    // The byte budget comes back here, as the batch is taken.
    let (mut items, replies): (Vec<Appending>, Vec<_>) = batch
        .drain(..)
        .map(|Queued { publish: Publish { mut message, reply }, .. }| {
            message.ts = ts;
            (Appending::new(message), reply)
        })
        .unzip();
    let started = Instant::now();
    if let Err(err) = store.append(&mut items) {
        tracing::error!(%err, messages = items.len(), "cannot store messages; senders are told to retry");
    }
    metrics.stored(started.elapsed(), items.len());
    let (mut from_sockets, mut from_api) = (0, 0);
    for (item, reply) in items.into_iter().zip(replies) {
        let id = item.message.id;
        let answer = match item.outcome {
            Outcome::New => {
                let seq = item.message.seq;
                match reply {
                    Reply::Once(_) => from_api += 1,
                    Reply::Queue(_) | Reply::Nobody => from_sockets += 1,
                }
                if let Reply::Queue(queue) = reply {
                    // A JSON sender's ack goes with the message: the broker
                    // sends it once the message reached this node's members.
                    broker.committed(item.message, &item.epoch, Some(Ack::new(id, seq, queue)));
                    continue;
                }
                broker.committed(item.message, &item.epoch, None);
                Answer::Stored { seq, epoch: item.epoch, duplicate: false }
            }
            Outcome::Duplicate(seq) => {
                metrics.not_new(NotNew::Duplicate);
                Answer::Stored { seq, epoch: item.epoch, duplicate: true }
            }
            Outcome::Conflict(seq) => {
                metrics.not_new(NotNew::Conflict);
                Answer::Conflict { seq, epoch: item.epoch }
            }
            Outcome::Pending => {
                metrics.not_new(NotNew::Unavailable);
                Answer::Unavailable
            }
            Outcome::OverQuota => {
                metrics.not_new(NotNew::OverQuota);
                Answer::OverQuota
            }
        };
        match reply {
            Reply::Nobody => {}
            Reply::Once(sender) => drop(sender.send(answer)),
            Reply::Queue(queue) => {
                queue.push_or_evict(Outbound::unsequenced(Frame::text(answer.event(id).encode())));
            }
        }
    }
    metrics.published(from_sockets, from_api);
}

impl Answer {
    /// The event that tells a JSON sender.
    pub fn event(&self, id: MessageId) -> ServerEvent {
        match self {
            Self::Stored { seq, .. } | Self::Conflict { seq, .. } => ServerEvent::Ack { id, seq: *seq },
            Self::Unavailable => ServerEvent::Error {
                code: ErrorCode::Unavailable,
                message: "the message could not be stored; send it again".into(),
                id: Some(id),
            },
            Self::OverQuota => ServerEvent::Error {
                code: ErrorCode::Quota,
                message: "this server holds as many rooms as it may; the message cannot create another".into(),
                id: Some(id),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::{Condvar, Mutex};

    use roomcast_shared::{ChatMessage, ClientId, GroupName, Sender};
    use uuid::Uuid;

    use super::*;
    use crate::history::broker::LocalBroker;
    use crate::history::memory::{hooked::Hooked, MemoryStore};
    use crate::history::store::HistoryError;
    use crate::queue::{Capacity, Next};
    use crate::registry::{Registry, WireMode};

    /// The local broker over `store`, delivering to `registry`.
    fn local(store: &Arc<GatedStore>, registry: Arc<Registry>) -> Arc<dyn Broker> {
        Arc::new(LocalBroker::new(store.clone(), registry))
    }

    /// A memory store whose appends wait for [`open`](Self::open) and then
    /// succeed or, if `failing`, fail.
    struct GatedStore {
        inner: MemoryStore,
        failing: bool,
        state: Mutex<Gate>,
        changed: Condvar,
        /// Appends (commits) so far.
        appends: std::sync::atomic::AtomicUsize,
    }

    #[derive(Default)]
    struct Gate {
        open: bool,
        entered: bool,
    }

    impl GatedStore {
        fn new(open: bool, failing: bool) -> Arc<Self> {
            let gate = Gate { open, entered: false };
            let (state, changed, appends) = (Mutex::new(gate), Condvar::new(), Default::default());
            Arc::new(Self { inner: MemoryStore::default(), failing, state, changed, appends })
        }

        fn open(&self) {
            self.state.lock().unwrap().open = true;
            self.changed.notify_all();
        }

        /// Blocks until the writer is inside `append`.
        fn wait_until_entered(&self) {
            let mut gate = self.state.lock().unwrap();
            while !gate.entered {
                gate = self.changed.wait(gate).unwrap();
            }
        }
    }

    impl Hooked for GatedStore {
        fn inner(&self) -> &MemoryStore {
            &self.inner
        }

        fn before_append(&self) -> Result<(), HistoryError> {
            self.appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut gate = self.state.lock().unwrap();
            gate.entered = true;
            self.changed.notify_all();
            while !gate.open {
                gate = self.changed.wait(gate).unwrap();
            }
            if self.failing {
                return Err(HistoryError::Corrupt("injected failure".into()));
            }
            Ok(())
        }
    }

    const DEPTH: usize = 16;
    const QUEUE: Capacity = Capacity { messages: 8, bytes: 1 << 20 };

    fn lobby() -> GroupName {
        "lobby".parse().unwrap()
    }

    fn publish(reply_to: Option<Arc<MemberQueue>>) -> Publish {
        let reply = reply_to.map_or(Reply::Nobody, Reply::Queue);
        let message = ChatMessage {
            group: lobby(),
            seq: 0,
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: false },
            text: "hello".into(),
            ts: 0,
        };
        Publish { message, reply }
    }

    async fn stop(sequencer: Sequencer, writer: JoinHandle<()>) {
        drop(sequencer);
        tokio::task::spawn_blocking(move || writer.join().expect("the writer does not panic")).await.unwrap();
    }

    /// Two publishes 50 ms apart, each waited for: how many commits they took.
    async fn commits_of_two_publishes(commit_window: CommitWindow) -> usize {
        let store = GatedStore::new(true, false);
        let depth = Depth { messages: DEPTH, bytes: 1 << 20, commit_window };
        let (sequencer, writer) =
            Sequencer::start(store.clone(), local(&store, Registry::new(QUEUE)), depth, Metrics::new()).unwrap();
        let first = sequencer.publish_and_wait(publish(None).message);
        let second = async {
            // The second publish's arrival, 50 ms after the first's.
            tokio::time::sleep(Duration::from_millis(50)).await;
            sequencer.publish_and_wait(publish(None).message).await
        };
        let (first, second) = tokio::join!(first, second);
        assert!(first.is_ok() && second.is_ok());
        let commits = store.appends.load(std::sync::atomic::Ordering::SeqCst);
        stop(sequencer, writer).await;
        commits
    }

    #[tokio::test]
    async fn a_commit_window_lets_a_later_publish_join_the_commit() {
        assert_eq!(commits_of_two_publishes(CommitWindow::NONE).await, 2, "no window: a commit each");
        let window = CommitWindow { length: Duration::from_millis(500), siblings: 0 };
        assert_eq!(commits_of_two_publishes(window).await, 1, "one commit within the window");
    }

    #[tokio::test]
    async fn the_window_waits_when_siblings_were_waiting() {
        let store = GatedStore::new(false, false);
        let window = CommitWindow { length: Duration::from_secs(2), siblings: 1 };
        let depth = Depth { messages: DEPTH, bytes: 1 << 20, commit_window: window };
        let (sequencer, writer) =
            Sequencer::start(store.clone(), local(&store, Registry::new(QUEUE)), depth, Metrics::new()).unwrap();
        let answered = |publish: &mut Publish| {
            let (answer, answered) = tokio::sync::oneshot::channel();
            publish.reply = Reply::Once(answer);
            answered
        };
        // The writer holds the first in `append`; two wait behind it.
        assert!(matches!(sequencer.try_submit(publish(None)), Ok(Submitted::Queued)));
        store.wait_until_entered();
        let (mut second, mut third) = (publish(None), publish(None));
        let (second_answer, third_answer) = (answered(&mut second), answered(&mut third));
        assert!(matches!(sequencer.try_submit(second), Ok(Submitted::Queued)));
        assert!(matches!(sequencer.try_submit(third), Ok(Submitted::Queued)));
        store.open();
        // A fourth arrives 50 ms later: inside the window the two waiting
        // ones opened, so it joins their commit (without a window they
        // would be committed before it came).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let fourth = sequencer.publish_and_wait(publish(None).message).await;
        assert!(fourth.is_ok() && second_answer.await.is_ok() && third_answer.await.is_ok());
        assert_eq!(store.appends.load(std::sync::atomic::Ordering::SeqCst), 2, "the first, then the other three");
        stop(sequencer, writer).await;
    }

    #[tokio::test]
    async fn a_lone_publish_does_not_wait_for_siblings_that_are_not_there() {
        // A window longer than the test may take: with one sibling asked
        // for, a publish nobody waited beside is committed at once.
        let window = CommitWindow { length: Duration::from_secs(3600), siblings: 1 };
        let answered = tokio::time::timeout(Duration::from_secs(60), commits_of_two_publishes(window));
        assert_eq!(answered.await.expect("committed without the window"), 2);
    }

    #[tokio::test]
    async fn a_full_queue_hands_the_publish_back_until_there_is_room() {
        let store = GatedStore::new(false, false);
        let (sequencer, writer) = Sequencer::start(
            store.clone(),
            local(&store, Registry::new(QUEUE)),
            Depth { messages: DEPTH, bytes: 1 << 20, commit_window: CommitWindow::NONE },
            Metrics::new(),
        )
        .unwrap();
        assert!(matches!(sequencer.try_submit(publish(None)), Ok(Submitted::Queued)));
        // The writer holds that one in `append`; the queue behind it fills.
        store.wait_until_entered();
        for _ in 0..DEPTH {
            assert!(matches!(sequencer.try_submit(publish(None)), Ok(Submitted::Queued)));
        }
        let Ok(Submitted::Backlogged(mut backlogged)) = sequencer.try_submit(publish(None)) else {
            panic!("a full queue must hand the publish back");
        };
        assert!(poll_fn(|cx| Poll::Ready(backlogged.poll_submit(cx))).await.is_pending());

        store.open();
        poll_fn(|cx| backlogged.poll_submit(cx)).await.unwrap();
        stop(sequencer, writer).await;
        assert_eq!(store.head(&lobby()).unwrap().last, DEPTH as u64 + 2, "every publish stored, none twice");
    }

    #[tokio::test]
    async fn a_full_byte_budget_hands_the_publish_back_until_there_is_room() {
        let store = GatedStore::new(false, false);
        let depth = Depth { messages: DEPTH, bytes: 12, commit_window: CommitWindow::NONE };
        let (sequencer, writer) =
            Sequencer::start(store.clone(), local(&store, Registry::new(QUEUE)), depth, Metrics::new()).unwrap();
        // "hello" is 5 bytes: two fit, the third waits though slots are free.
        assert!(matches!(sequencer.try_submit(publish(None)), Ok(Submitted::Queued)));
        store.wait_until_entered();
        assert!(matches!(sequencer.try_submit(publish(None)), Ok(Submitted::Queued)));
        assert!(matches!(sequencer.try_submit(publish(None)), Ok(Submitted::Queued)));
        let Ok(Submitted::Backlogged(mut backlogged)) = sequencer.try_submit(publish(None)) else {
            panic!("a full byte budget must hand the publish back");
        };
        assert!(poll_fn(|cx| Poll::Ready(backlogged.poll_submit(cx))).await.is_pending());
        store.open();
        poll_fn(|cx| backlogged.poll_submit(cx)).await.unwrap();
        stop(sequencer, writer).await;
        assert_eq!(store.head(&lobby()).unwrap().last, 4);
    }

    #[tokio::test]
    async fn a_failed_write_is_neither_delivered_nor_acknowledged() {
        let store = GatedStore::new(true, true);
        let registry = Registry::new(QUEUE);
        let member = registry.join(&lobby(), WireMode::Json, roomcast_shared::ClientId(uuid::Uuid::new_v4()));
        assert!(member.go_live(0, ""));
        let sender = Arc::new(MemberQueue::new(QUEUE));
        let (sequencer, writer) = Sequencer::start(
            store.clone(),
            local(&store, registry.clone()),
            Depth { messages: DEPTH, bytes: 1 << 20, commit_window: CommitWindow::NONE },
            Metrics::new(),
        )
        .unwrap();
        let sent = publish(Some(sender.clone()));
        let id = sent.message.id;
        assert!(matches!(sequencer.try_submit(sent), Ok(Submitted::Queued)));

        let Next::Message(reply) = sender.next().await else { panic!("the sender is not evicted") };
        let event = ServerEvent::decode(reply.frame.as_text().unwrap()).unwrap();
        assert!(
            matches!(event, ServerEvent::Error { code: ErrorCode::Unavailable, id: Some(refused), .. } if refused == id),
            "{event:?}"
        );
        // Delivery comes before the reply, so anything delivered would be here.
        assert!(member.queue().try_pop().is_none());
        stop(sequencer, writer).await;
    }
}
