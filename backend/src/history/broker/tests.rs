//! The broker contract, checked against every backend (memory, SQLite,
//! Redis, in the Redis tier: `--features redis-tests`), each opened as
//! the server opens it: a committed message reaches
//! the members here once and in order, its sender's `ack` only after it, and
//! what was stored behind the broker's back is delivered first; a resend is
//! acked with its first number and not delivered again; a sender whose
//! group has nobody here is acked all the same. (The first
//! message of a group members do not know yet is acknowledged at once in
//! Redis mode, as before: each test starts with a group they know.)

use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::{ChatMessage, ClientId, GroupName, MessageId, Sender, ServerEvent};
use uuid::Uuid;

use crate::backend::Backend;
use crate::config::{Config, HistoryKind};
use crate::history::sequencer::{Depth, Publish, Reply, Sequencer, Submitted};
use crate::history::Appending;
use crate::metrics::Metrics;
use crate::queue::{Capacity, MemberQueue, Next};
use crate::registry::{Membership, Registry, WireMode};

/// Longest wait for a delivery (Redis: through the subscriber).
const PATIENCE: Duration = Duration::from_secs(10);

/// A backend delivering to its registry, and what it runs on.
struct Under {
    name: &'static str,
    backend: Backend,
    registry: Arc<Registry>,
    #[cfg(feature = "redis-tests")]
    _redis: Option<roomcast_testkit::LocalRedis>,
    _database: Option<RemovedDir>,
}

/// A directory removed on drop.
struct RemovedDir(std::path::PathBuf);

impl Drop for RemovedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One backend of each kind, opened from a configuration by
/// [`Backend::open`].
fn every_backend() -> Vec<Under> {
    let open = |config: &Config| {
        let registry = Registry::new(Capacity { messages: 64, bytes: 1 << 20 });
        (Backend::open(config, registry.clone(), Metrics::new()).expect("the backend opens"), registry)
    };
    let mut config = Config::defaults();
    config.history = HistoryKind::Memory;
    let (backend, registry) = open(&config);
    let memory = Under {
        name: "memory",
        backend,
        registry,
        #[cfg(feature = "redis-tests")]
        _redis: None,
        _database: None,
    };
    let dir = std::env::temp_dir().join(format!("roomcast-broker-{}", Uuid::new_v4()));
    config.history = HistoryKind::Sqlite;
    config.database = dir.join("history.sqlite3");
    let (backend, registry) = open(&config);
    let sqlite = Under {
        name: "sqlite",
        backend,
        registry,
        #[cfg(feature = "redis-tests")]
        _redis: None,
        _database: Some(RemovedDir(dir)),
    };
    #[cfg_attr(not(feature = "redis-tests"), allow(unused_mut))]
    let mut backends = vec![memory, sqlite];
    #[cfg(feature = "redis-tests")]
    {
        let redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
        config.redis = Some(redis.url());
        let (backend, registry) = open(&config);
        backends.push(Under { name: "redis", backend, registry, _redis: Some(redis), _database: None });
    }
    backends
}

fn lobby() -> GroupName {
    "lobby".parse().unwrap()
}

fn message(text: &str) -> ChatMessage {
    ChatMessage {
        group: lobby(),
        seq: 0,
        id: MessageId(Uuid::new_v4()),
        from: Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: false },
        text: text.into(),
        ts: 0,
    }
}

/// A JSON member of the lobby, live from the start, that has message 1.
async fn live_member(under: &Under) -> Membership {
    let member = under.registry.join(&lobby(), WireMode::Json, ClientId(Uuid::new_v4()));
    assert!(member.go_live(0, ""));
    publish(under, 1, member.queue()).await;
    until(member.queue(), |seen| seen.contains(&Ok(1)) && seen.contains(&Err(1))).await;
    member
}

/// Publishes `count` messages through `under`'s sequencer, each acked to
/// `sender`, and stops the sequencer once they are stored.
async fn publish(under: &Under, count: usize, sender: &Arc<MemberQueue>) {
    publish_each(under, (0..count).map(|i| message(&format!("m{i}"))).collect(), sender).await;
}

/// Publishes `messages` as they are (ids, groups) through `under`'s
/// sequencer, each acked to `sender`, and stops the sequencer once they are
/// stored.
async fn publish_each(under: &Under, messages: Vec<ChatMessage>, sender: &Arc<MemberQueue>) {
    let depth = Depth { messages: 64, bytes: 1 << 20, commit_window: crate::history::sequencer::CommitWindow::NONE };
    let (sequencer, writer) =
        Sequencer::start(under.backend.store().clone(), under.backend.broker().clone(), depth, Metrics::new())
            .expect("a writer thread");
    for message in messages {
        let publish = Publish { message, reply: Reply::Queue(sender.clone()) };
        assert!(matches!(sequencer.try_submit(publish), Ok(Submitted::Queued)));
    }
    drop(sequencer);
    tokio::task::spawn_blocking(move || writer.join().expect("the writer does not panic")).await.unwrap();
}

/// What `queue` gets until `acks` acks have come: message numbers as
/// `Ok(seq)`, acks as `Err(seq)` (resets and syncs left out).
async fn until_acked(queue: &MemberQueue, acks: usize) -> Vec<Result<u64, u64>> {
    until(queue, |seen| seen.iter().filter(|event| event.is_err()).count() >= acks).await
}

/// What `queue` gets until `done` says it is enough (see [`until_acked`]).
async fn until(queue: &MemberQueue, done: impl Fn(&[Result<u64, u64>]) -> bool) -> Vec<Result<u64, u64>> {
    let mut seen: Vec<Result<u64, u64>> = Vec::new();
    while !done(&seen) {
        let Ok(Next::Message(outbound)) = tokio::time::timeout(PATIENCE, queue.next()).await else {
            panic!("nothing more came after {seen:?}");
        };
        match ServerEvent::decode(outbound.frame.as_text().unwrap()).unwrap() {
            ServerEvent::Message(message) => seen.push(Ok(message.seq)),
            ServerEvent::Ack { seq, .. } => seen.push(Err(seq)),
            _ => {}
        }
    }
    seen
}

/// Each message of `seqs` once, in order, and each ack after its message.
fn assert_in_order_acked_after(name: &str, seen: &[Result<u64, u64>], seqs: std::ops::RangeInclusive<u64>) {
    let messages: Vec<u64> = seen.iter().filter_map(|event| event.ok()).collect();
    assert_eq!(messages, seqs.collect::<Vec<_>>(), "{name}: once each, in order");
    for (at, event) in seen.iter().enumerate() {
        if let Err(seq) = event {
            assert!(seen[..at].contains(&Ok(*seq)), "{name}: the ack of {seq} came before its message: {seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_message_reaches_the_members_once_in_order_and_is_acked_after() {
    for under in every_backend() {
        let member = live_member(&under).await;
        publish(&under, 20, member.queue()).await;
        let seen = until_acked(member.queue(), 20).await;
        assert_in_order_acked_after(under.name, &seen, 2..=21);
        under.backend.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_stored_behind_the_brokers_back_is_delivered_first() {
    for under in every_backend() {
        let member = live_member(&under).await;
        // Stored without the broker (another node's writer, or pub/sub
        // lost its announcements): the next commit fills the hole.
        let mut behind: Vec<Appending> = (0..3).map(|i| Appending::new(message(&format!("b{i}")))).collect();
        under.backend.store().append(&mut behind).unwrap();
        publish(&under, 1, member.queue()).await;
        let seen = until_acked(member.queue(), 1).await;
        assert_in_order_acked_after(under.name, &seen, 2..=5);
        under.backend.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_is_acked_with_its_first_number_and_delivered_once() {
    for under in every_backend() {
        let member = live_member(&under).await;
        let first = message("once");
        publish_each(&under, vec![first.clone()], member.queue()).await;
        let seen = until_acked(member.queue(), 1).await;
        assert_in_order_acked_after(under.name, &seen, 2..=2);
        // The same id again (a client that never saw its ack), then a new
        // message: the resend's ack names 2, and the next thing delivered
        // is 3.
        publish_each(&under, vec![first, message("after")], member.queue()).await;
        let seen = until_acked(member.queue(), 2).await;
        let acks: Vec<u64> = seen.iter().filter_map(|event| event.err()).collect();
        assert_eq!(acks, [2, 3], "{}: the resend is acked with its first number: {seen:?}", under.name);
        let messages: Vec<u64> = seen.iter().filter_map(|event| event.ok()).collect();
        assert_eq!(messages, [3], "{}: the resend is not delivered again: {seen:?}", under.name);
        under.backend.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_is_acked_in_a_group_nobody_is_in_here() {
    let elsewhere: GroupName = "elsewhere".parse().unwrap();
    for under in every_backend() {
        let member = live_member(&under).await;
        assert_eq!(under.registry.members(&elsewhere), 0);
        // A sender this node delivers nothing to: nobody here is in its
        // group, so no delivery here can come before its ack.
        let sender = Arc::new(MemberQueue::new(Capacity { messages: 64, bytes: 1 << 20 }));
        let mut nowhere = message("to nobody here");
        nowhere.group = elsewhere.clone();
        publish_each(&under, vec![nowhere], &sender).await;
        assert_eq!(until_acked(&sender, 1).await, [Err(1)], "{}: acked, as the first of its group", under.name);
        // Nor does it reach the lobby's members: their next delivery is
        // the lobby's own next message.
        publish(&under, 1, member.queue()).await;
        let seen = until_acked(member.queue(), 1).await;
        assert_in_order_acked_after(under.name, &seen, 2..=2);
        under.backend.stop().await;
    }
}
