//! The store contract, checked against every store (memory and SQLite
//! always; Redis with the `redis-tests` feature, which starts a private
//! redis-server); the replay plan; history pages.

use std::path::PathBuf;
use std::time::Duration;

use roomcast_shared::{ChatMessage, ClientId, GroupName, MessageId, Sender};
use uuid::Uuid;

use super::memory::{hooked::Hooked, MemoryStore};
#[cfg(feature = "redis-tests")]
use super::redis_store::{RedisOptions, RedisStore};
use super::sqlite::{Durability, SqliteOptions, SqliteStore};
use super::store::CURSORS_PER_IDENTITY;
use super::*;
use crate::ban::Ban;
use crate::clock::unix_millis;

fn latest(store: &dyn Store, group_name: &str, limit: usize) -> Vec<ChatMessage> {
    store.read(&group(group_name), Range::LATEST, Limit::messages(limit)).unwrap().messages
}

fn after(store: &dyn Store, group_name: &str, after: u64, limit: usize) -> Vec<u64> {
    seqs(&store.read(&group(group_name), Range::After(after), Limit::messages(limit)).unwrap().messages)
}

fn before(store: &dyn Store, group_name: &str, before: u64, limit: usize) -> Vec<u64> {
    seqs(&store.read(&group(group_name), Range::Before(before), Limit::messages(limit)).unwrap().messages)
}

/// `(oldest, last)` of a group, and whether it has an epoch.
fn bounds(store: &dyn Store, group_name: &str) -> (Option<u64>, u64, bool) {
    let head = store.head(&group(group_name)).unwrap();
    (head.oldest, head.last, !head.epoch.is_empty())
}

fn sqlite(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::new(Durability::Normal)).unwrap()
}

fn group(name: &str) -> GroupName {
    name.parse().unwrap()
}

fn draft(group_name: &str, text: &str, ts: u64) -> Appending {
    Appending::new(ChatMessage {
        group: group(group_name),
        seq: 0,
        id: MessageId(Uuid::new_v4()),
        from: Sender { client_id: ClientId(Uuid::new_v4()), name: Some("Ann".parse().unwrap()), verified: true },
        text: text.into(),
        ts,
    })
}

fn append(store: &dyn Store, group_name: &str, count: usize) -> Vec<ChatMessage> {
    let mut batch: Vec<_> = (0..count).map(|i| draft(group_name, &format!("m{i}"), 1_000 + i as u64)).collect();
    store.append(&mut batch).unwrap();
    batch.into_iter().map(|item| item.message).collect()
}

fn seqs(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("roomcast-test-{}.sqlite3", Uuid::new_v4())))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// Runs `check` against a memory store and a fresh SQLite store.
fn each_store(check: impl Fn(&dyn Store)) {
    check(&MemoryStore::default());
    let db = TempDb::new();
    check(&sqlite(&db.0));
}

/// Runs `check` against every store, a fresh Redis one too (for what does
/// not involve `prune`: Redis retention applies as messages are appended)
/// in the Redis tier (`--features redis-tests`).
fn every_store(check: impl Fn(&dyn Store)) {
    each_store(&check);
    #[cfg(feature = "redis-tests")]
    {
        let redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
        check(&RedisStore::open(&redis.url(), RedisOptions::default()).unwrap());
    }
}

#[test]
fn sequence_numbers_are_consecutive_per_group() {
    every_store(|store| {
        let mut batch = vec![draft("a", "1", 1), draft("b", "1", 1), draft("a", "2", 1)];
        store.append(&mut batch).unwrap();
        assert_eq!(
            batch.iter().map(|i| (i.message.seq, i.outcome)).collect::<Vec<_>>(),
            [(1, Outcome::New), (1, Outcome::New), (2, Outcome::New)]
        );
        assert_eq!(seqs(&append(store, "a", 2)), [3, 4]);
        assert_eq!(bounds(store, "a"), (Some(1), 4, true));
        assert_eq!(bounds(store, "new"), (None, 0, false), "no group, no epoch");
        assert_eq!(batch[0].epoch, batch[2].epoch, "one epoch per group");
        assert_ne!(batch[0].epoch, batch[1].epoch);
    });
}

#[test]
fn a_message_id_is_stored_once_per_group() {
    every_store(|store| {
        let first = draft("a", "once", 1);
        let mut batch = vec![first.clone()];
        store.append(&mut batch).unwrap();
        // Again in a later batch, and twice within one batch.
        let mut again = vec![first.clone(), draft("a", "other", 1), first.clone()];
        store.append(&mut again).unwrap();
        assert_eq!(again[0].outcome, Outcome::Duplicate(1));
        assert_eq!(again[1].outcome, Outcome::New);
        assert_eq!(again[2].outcome, Outcome::Duplicate(1));
        assert_eq!(seqs(&latest(store, "a", 10)), [1, 2]);
        // The same id in another group is another message.
        let mut elsewhere = vec![Appending::new(ChatMessage { group: group("b"), ..first.message })];
        store.append(&mut elsewhere).unwrap();
        assert_eq!(elsewhere[0].outcome, Outcome::New);
    });
}

/// A repeated id with another text is told apart from a resend, while
/// its message is retained and after retention removed it.
#[test]
fn a_repeated_id_with_another_text_is_a_conflict() {
    let other_text = |message: &Appending| {
        let mut other = message.clone();
        other.message.text = "not the same".into();
        other
    };
    let outcome = |store: &dyn Store, message: &Appending| {
        let mut batch = vec![message.clone()];
        store.append(&mut batch).unwrap();
        batch[0].outcome
    };
    every_store(|store| {
        let first = draft("a", "first", 1_000);
        outcome(store, &first);
        assert_eq!(outcome(store, &first), Outcome::Duplicate(1));
        assert_eq!(outcome(store, &other_text(&first)), Outcome::Conflict(1));
        // Within one batch too.
        let next = draft("a", "next", 1_000);
        let mut batch = vec![next.clone(), other_text(&next), next];
        store.append(&mut batch).unwrap();
        let outcomes: Vec<_> = batch.iter().map(|item| item.outcome).collect();
        assert_eq!(outcomes, [Outcome::New, Outcome::Conflict(2), Outcome::Duplicate(2)]);
        assert_eq!(seqs(&latest(store, "a", 10)), [1, 2], "nothing stored twice");
    });
    each_store(|store| {
        let first = draft("a", "first", 1_000);
        outcome(store, &first);
        let later = append(store, "a", 3); // 2..=4
        store.prune(&Retention { max_messages: Some(2), ..Retention::default() }, 2_000).unwrap();
        assert_eq!(bounds(store, "a").0, Some(3), "1 and 2 removed");
        assert_eq!(outcome(store, &first), Outcome::Duplicate(1), "removed");
        assert_eq!(outcome(store, &other_text(&first)), Outcome::Conflict(1), "removed");
        // A retained message past the pruned ones is found in its place.
        let fourth = Appending::new(later[2].clone());
        assert_eq!(outcome(store, &fourth), Outcome::Duplicate(4), "retained");
        assert_eq!(outcome(store, &other_text(&fourth)), Outcome::Conflict(4), "retained");
    });
}

#[test]
fn reads_return_pages_oldest_first() {
    every_store(|store| {
        let stored = append(store, "a", 10);
        assert_eq!(latest(store, "a", 3), stored[7..].to_vec());
        assert_eq!(after(store, "a", 4, 3), [5, 6, 7]);
        assert_eq!(after(store, "a", 10, 3), Vec::<u64>::new());
        assert_eq!(before(store, "a", 5, 2), [3, 4]);
        assert_eq!(before(store, "a", 2, 5), [1]);
        assert!(latest(store, "none", 5).is_empty());
        // A byte limit keeps the messages nearest to where the read starts,
        // at least one.
        let one = store::json_len(&stored[0]);
        let limit = Limit { messages: 10, bytes: one * 3 + 1 };
        let read = |range| seqs(&store.read(&group("a"), range, limit).unwrap().messages);
        assert_eq!(read(Range::After(0)), [1, 2, 3]);
        assert_eq!(read(Range::LATEST), [8, 9, 10]);
        let tiny = Limit { messages: 10, bytes: 1 };
        assert_eq!(seqs(&store.read(&group("a"), Range::After(4), tiny).unwrap().messages), [5]);
    });
}

#[test]
fn retention_by_count_age_and_bytes_keeps_numbering_within_an_epoch() {
    each_store(|store| {
        append(store, "a", 10); // ts 1000..1009
        let b_epoch = store.head(&group("b")).unwrap().epoch;
        append(store, "b", 3);
        let by_count = Retention { max_messages: Some(4), ..Retention::default() };
        assert_eq!(store.prune(&by_count, 0).unwrap(), 6);
        assert_eq!(bounds(store, "a"), (Some(7), 10, true));
        let by_age = Retention { max_age: Some(Duration::from_millis(2)), ..Retention::default() };
        // now = 1010: messages older than ts 1008 go (a: 7 and 8; b: all three).
        assert_eq!(store.prune(&by_age, 1_010).unwrap(), 5);
        assert_eq!(bounds(store, "a"), (Some(9), 10, true));
        // An emptied group is gone; it comes back in a new epoch.
        assert_eq!(bounds(store, "b"), (None, 0, false));
        let old_epoch = store.head(&group("b")).unwrap().epoch;
        assert!(b_epoch.is_empty() && old_epoch.is_empty());
        assert_eq!(seqs(&append(store, "b", 1)), [1]);
        assert!(!store.head(&group("b")).unwrap().epoch.is_empty());
        // By bytes: texts "m0".."m9" are 2 bytes each; 5 bytes keep two.
        append(store, "c", 10);
        let by_bytes = Retention { max_bytes: Some(5), ..Retention::default() };
        store.prune(&by_bytes, 0).unwrap();
        assert_eq!(bounds(store, "c"), (Some(9), 10, true));
    });
}

#[test]
fn a_new_epoch_after_a_group_is_emptied() {
    each_store(|store| {
        append(store, "a", 3);
        let first = store.head(&group("a")).unwrap().epoch;
        store.prune(&Retention { max_messages: Some(0), ..Retention::default() }, 0).unwrap();
        append(store, "a", 1);
        let second = store.head(&group("a")).unwrap().epoch;
        assert_ne!(first, second);
    });
}

/// Retention removes messages, not what their ids promise: a resend of a
/// removed message is recognized with its number until the id is a dedup
/// window old, and a group that starts over starts with no ids.
#[test]
fn removed_ids_are_recognized_for_the_dedup_window() {
    each_store(|store| {
        let resend = |message: &Appending| {
            let mut batch = vec![message.clone()];
            store.append(&mut batch).unwrap();
            batch.remove(0)
        };
        let first = draft("a", "first", 1_000);
        resend(&first);
        append(store, "a", 3); // ts 1000..1002
        store.prune(&Retention { max_messages: Some(2), ..Retention::default() }, 2_000).unwrap();
        assert_eq!(bounds(store, "a"), (Some(3), 4, true));
        assert_eq!(resend(&first).outcome, Outcome::Duplicate(1), "removed, still recognized");
        let window = DEDUP_WINDOW.as_millis() as u64;
        store.prune(&Retention::default(), 1_000 + window).unwrap();
        assert_eq!(resend(&first).outcome, Outcome::Duplicate(1), "within the window to the millisecond");
        store.prune(&Retention::default(), 1_001 + window).unwrap();
        let late = resend(&first);
        assert_eq!((late.outcome, late.message.seq), (Outcome::New, 5), "a window later, another message");
        // Emptied, the group starts over: its old ids mean nothing there.
        let second = draft("a", "second", 3_000);
        resend(&second);
        store.prune(&Retention { max_messages: Some(0), ..Retention::default() }, 4_000).unwrap();
        let again = resend(&second);
        assert_eq!((again.outcome, again.message.seq), (Outcome::New, 1));
    });
}

#[test]
fn max_groups_refuses_a_new_group_until_one_is_gone() {
    let check = |store: &dyn Store| {
        append(store, "a", 1);
        append(store, "b", 1);
        let mut batch = vec![draft("c", "x", 1), draft("a", "y", 1)];
        store.append(&mut batch).unwrap();
        assert_eq!((batch[0].outcome, batch[1].outcome), (Outcome::OverQuota, Outcome::New));
        assert_eq!(bounds(store, "c"), (None, 0, false), "nothing stored");
        // Retention empties b: there is room again.
        store.prune(&Retention { max_age: Some(Duration::from_millis(1)), ..Retention::default() }, 1_000_000).unwrap();
        assert_eq!(seqs(&append(store, "c", 1)), [1]);
    };
    check(&MemoryStore::with_max_groups(Some(2)));
    let db = TempDb::new();
    let options = SqliteOptions { max_groups: Some(2), ..SqliteOptions::new(Durability::Normal) };
    check(&SqliteStore::open(&db.0, options).unwrap());
}

/// At the database size limit an append fails (nothing half-stored, no
/// number taken), the oldest messages make room, and the retry succeeds:
/// whatever the retention, writing never stops for good.
#[test]
fn sqlite_at_its_size_limit_refuses_once_then_makes_room() {
    let db = TempDb::new();
    let options = SqliteOptions { max_database_bytes: Some(256 * 1024), ..SqliteOptions::new(Durability::Normal) };
    let store = SqliteStore::open(&db.0, options).unwrap();
    let text = "x".repeat(1_000);
    let mut stored = 0u64;
    let failed = loop {
        let mut batch = vec![draft("a", &text, stored)];
        match store.append(&mut batch) {
            Ok(()) => stored += 1,
            Err(err) => break (err, batch),
        }
        assert!(stored < 1_000, "the limit never came");
    };
    assert_eq!(failed.1[0].outcome, Outcome::Pending, "{}", failed.0);
    assert_eq!(bounds(&store, "a").1, stored, "the failed message took no number: {}", failed.0);
    let mut retry = vec![failed.1[0].clone()];
    store.append(&mut retry).unwrap();
    assert_eq!(retry[0].message.seq, stored + 1);
    let (oldest, last, _) = bounds(&store, "a");
    assert!(oldest.unwrap() > 1 && last == stored + 1, "the oldest made room: {oldest:?}..={last}");
    // Writing on goes on, well past the limit's worth.
    append(&store, "b", 200);
}

/// A database at its size limit, with no free page: retention still runs
/// and keeps the ids of what it removes; and the next time the limit is
/// reached, the oldest of those ids make room before any message does.
#[test]
fn sqlite_at_its_size_limit_prunes_and_forgets_ids_before_history() {
    let db = TempDb::new();
    let first = draft("a", "first", 1);
    {
        let store = sqlite(&db.0);
        store.append(&mut [first.clone()]).unwrap();
        for _ in 0..20 {
            append(&store, "a", 50);
        }
    }
    // Closed (the log checkpointed into the file): the limit is its size.
    let size = std::fs::metadata(&db.0).unwrap().len();
    let options = SqliteOptions { max_database_bytes: Some(size), ..SqliteOptions::new(Durability::Normal) };
    let store = SqliteStore::open(&db.0, options).unwrap();
    store.prune(&Retention { max_messages: Some(10), ..Retention::default() }, 2_000).unwrap();
    assert_eq!(bounds(&store, "a"), (Some(992), 1_001, true));
    let resend = |message: &Appending| {
        let mut batch = vec![message.clone()];
        store.append(&mut batch).unwrap();
        batch.remove(0).outcome
    };
    assert_eq!(resend(&first), Outcome::Duplicate(1), "pruned at the limit, still recognized");
    let text = "x".repeat(500);
    let refused = loop {
        let mut batch = vec![draft("a", &text, 3_000)];
        if store.append(&mut batch).is_err() {
            break batch;
        }
    };
    assert_eq!(bounds(&store, "a").0, Some(992), "no message made room");
    let mut retry = vec![refused[0].clone()];
    store.append(&mut retry).unwrap();
    assert_eq!(retry[0].outcome, Outcome::New, "the ids did");
    assert_eq!(resend(&first), Outcome::New, "the oldest id went first");
}

#[test]
fn sqlite_keeps_everything_across_reopening() {
    let db = TempDb::new();
    let stored = {
        let store = sqlite(&db.0);
        append(&store, "a", 5)
    };
    let store = sqlite(&db.0);
    assert_eq!(latest(&store, "a", 10), stored);
    assert_eq!(seqs(&append(&store, "a", 1)), [6]);
}

/// A database written before `verified` existed (schema 1) opens, reads its
/// messages as unverified, and stores the flag from then on.
#[test]
fn sqlite_migrates_a_schema_1_database() {
    let db = TempDb::new();
    {
        let old = rusqlite::Connection::open(&db.0).unwrap();
        old.execute_batch(
            "CREATE TABLE groups (name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE messages (grp TEXT NOT NULL, seq INTEGER NOT NULL, id BLOB NOT NULL,
                 client_id BLOB NOT NULL, name TEXT, text TEXT NOT NULL, ts INTEGER NOT NULL,
                 PRIMARY KEY (grp, seq)) WITHOUT ROWID;
             CREATE UNIQUE INDEX messages_by_id ON messages (grp, id);
             CREATE INDEX messages_by_ts ON messages (ts);
             INSERT INTO groups VALUES ('a', 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        old.execute(
            "INSERT INTO messages VALUES ('a', 1, ?1, ?2, 'Old', 'before identities', 5)",
            rusqlite::params![Uuid::new_v4().as_bytes(), Uuid::new_v4().as_bytes()],
        )
        .unwrap();
    }
    let store = sqlite(&db.0);
    assert!(!store.head(&group("a")).unwrap().epoch.is_empty(), "old groups get an epoch");
    let old = latest(&store, "a", 1).remove(0);
    assert_eq!((old.text.as_str(), old.from.verified), ("before identities", false));
    let new = append(&store, "a", 1).remove(0);
    assert_eq!(new.seq, 2);
    let reopened = sqlite(&db.0);
    assert_eq!(latest(&reopened, "a", 2), vec![old, new], "verified is stored");
}

/// Runs a replay to its end, as a connection does: what it sends, and the
/// position it ends at (the client's `synced`).
fn replay_all(store: &dyn Store, since: Option<u64>, epoch: Option<&str>, latest: usize) -> (Vec<Piece>, u64) {
    let start = Start { since, epoch: epoch.map(str::to_owned) };
    let mut replay = Replay::new(group("lobby"), start, latest);
    let mut pieces = Vec::new();
    for _ in 0..10_000 {
        let page = replay.step(store).unwrap();
        pieces.extend(page.pieces);
        if page.caught_up {
            return (pieces, replay.position());
        }
    }
    panic!("the replay never caught up");
}

/// `(gap, message numbers)` of what a replay sent.
fn sent(pieces: &[Piece]) -> (Vec<(u64, u64)>, Vec<u64>) {
    let gaps = pieces.iter().filter_map(|p| if let Piece::Gap { from, to } = p { Some((*from, *to)) } else { None });
    let numbers = pieces.iter().filter_map(|p| if let Piece::Message(m) = p { Some(m.seq) } else { None });
    (gaps.collect(), numbers.collect())
}

/// The recovery table: what a client with `since` (and `epoch`) gets.
#[test]
fn replay_plans() {
    let store = MemoryStore::default();
    let plan = |since, latest| {
        let (pieces, synced) = replay_all(&store, since, None, latest);
        let (gaps, numbers) = sent(&pieces);
        (gaps, numbers, synced)
    };

    // Empty group.
    assert_eq!(plan(None, 100), (vec![], vec![], 0));
    assert_eq!(plan(Some(0), 100), (vec![], vec![], 0));

    append(&store, "lobby", 10);
    store.prune(&Retention { max_messages: Some(6), ..Retention::default() }, 0).unwrap(); // keeps 5..=10

    // No since: the latest page.
    assert_eq!(plan(None, 3), (vec![], vec![8, 9, 10], 10));
    // Since = latest: nothing to replay.
    assert_eq!(plan(Some(10), 3), (vec![], vec![], 10));
    // Since inside the history: everything after it, however many.
    assert_eq!(plan(Some(6), 2), (vec![], vec![7, 8, 9, 10], 10));
    // Since just before the oldest kept: still complete.
    assert_eq!(plan(Some(4), 2).1, [5, 6, 7, 8, 9, 10]);
    // Since older than retention: the exact missing range, then everything
    // kept, from the oldest kept on.
    assert_eq!(plan(Some(2), 2), (vec![(3, 4)], vec![5, 6, 7, 8, 9, 10], 10));
    assert_eq!(plan(Some(0), 2).0, [(1, 4)]);
}

/// A different epoch, or a `since` beyond the group's last number, is a
/// reset followed by a fresh join; the same epoch, or none, replays.
#[test]
fn a_store_that_started_over_is_a_reset() {
    let store = MemoryStore::default();
    append(&store, "lobby", 10);
    let epoch = store.head(&group("lobby")).unwrap().epoch;
    let reset = Piece::Reset { epoch: epoch.clone() };

    let (pieces, synced) = replay_all(&store, Some(7), Some(&epoch), 3);
    assert_eq!((sent(&pieces).1, synced), (vec![8, 9, 10], 10), "same epoch: a replay");
    let (pieces, synced) = replay_all(&store, Some(7), Some("0123456789abcdef"), 3);
    assert_eq!(pieces[0], reset, "another epoch");
    assert_eq!((sent(&pieces).1, synced), (vec![8, 9, 10], 10), "then the latest, as a fresh join");
    let (pieces, synced) = replay_all(&store, Some(15), None, 2);
    assert_eq!(pieces[0], reset, "a since beyond the last number");
    assert_eq!((sent(&pieces).1, synced), (vec![9, 10], 10));
}

/// However long the history, a page holds at most [`replay::PAGE`], and
/// the pages together are everything, in order, once.
#[test]
fn a_long_replay_comes_in_bounded_pages() {
    let store = MemoryStore::default();
    let text = "y".repeat(8 * 1024);
    let mut batch: Vec<_> = (0..500).map(|_| draft("lobby", &text, 1)).collect();
    store.append(&mut batch).unwrap();
    let mut replay = Replay::new(group("lobby"), Start { since: Some(0), epoch: None }, 100);
    let mut numbers = Vec::new();
    loop {
        let page = replay.step(&store).unwrap();
        let bytes: usize =
            page.pieces.iter().map(|p| if let Piece::Message(m) = p { store::json_len(m) } else { 0 }).sum();
        assert!(bytes <= replay::PAGE.bytes, "a page of {bytes} bytes");
        numbers.extend(sent(&page.pieces).1);
        if page.caught_up {
            break;
        }
    }
    assert_eq!(numbers, (1..=500).collect::<Vec<_>>());
}

/// A store that prunes to its last `keep` messages right before each read
/// after the first: retention running between the replay's pages.
struct PrunesBetweenReads {
    inner: MemoryStore,
    keep: u64,
    reads: std::sync::atomic::AtomicUsize,
}

impl Hooked for PrunesBetweenReads {
    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn before_read(&self) -> Result<(), HistoryError> {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1 {
            self.inner.prune(&Retention { max_messages: Some(self.keep), ..Retention::default() }, 0)?;
        }
        Ok(())
    }
}

/// Each page reads head and rows in one snapshot, so a prune between the
/// replay's reads becomes an exact gap, never a silent hole.
#[test]
fn a_prune_during_the_replay_is_an_exact_gap() {
    let store = PrunesBetweenReads { inner: MemoryStore::default(), keep: 4, reads: Default::default() };
    append(&store, "lobby", 10);
    // The head said 1..=10 were kept; by the first page only 7..=10 are.
    let (pieces, synced) = replay_all(&store, Some(3), None, 100);
    assert_eq!((sent(&pieces), synced), ((vec![(4, 6)], vec![7, 8, 9, 10]), 10));
}

/// History pages: back from `before` (or the latest), forward from `after`,
/// each with `has_more` pointing its own way.
#[tokio::test]
async fn pages_go_back_and_forward() {
    let store = Arc::new(MemoryStore::default());
    append(store.as_ref(), "lobby", 10);
    store.prune(&Retention { max_messages: Some(8), ..Retention::default() }, 0).unwrap(); // keeps 3..=10
    let history = History::new(store, crate::metrics::Metrics::new());
    let page = |from, limit| {
        let history = history.clone();
        async move {
            let (messages, has_more) = history.page(group("lobby"), from, limit).await.unwrap();
            (seqs(&messages), has_more)
        }
    };
    assert_eq!(page(Range::LATEST, 3).await, (vec![8, 9, 10], true));
    assert_eq!(page(Range::Before(6), 5).await, (vec![3, 4, 5], false));
    assert_eq!(page(Range::After(4), 3).await, (vec![5, 6, 7], true));
    assert_eq!(page(Range::After(7), 3).await, (vec![8, 9, 10], false));
    assert_eq!(page(Range::After(10), 3).await, (vec![], false));
    assert_eq!(page(Range::After(99), 3).await, (vec![], false));
    // After a number retention removed: from the oldest kept on.
    assert_eq!(page(Range::After(0), 2).await, (vec![3, 4], true));
    assert_eq!(page(Range::After(0), 3).await.0, [3, 4, 5]);
}

/// Redis applies retention as it appends: the oldest go past the count or
/// the bytes, the newest stays, and a removed message's id is still
/// recognized (the dedup window).
#[test]
#[cfg(feature = "redis-tests")]
fn redis_retention_applies_on_append_and_ids_outlive_their_messages() {
    let redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
    let options = RedisOptions { max_messages: Some(4), max_bytes: Some(12), max_groups: Some(2) };
    let store = RedisStore::open(&redis.url(), options).unwrap();
    let first = draft("a", "0123", 1_000);
    let mut batch = vec![first.clone()];
    store.append(&mut batch).unwrap();
    append(&store, "a", 5); // "m0".."m4": 2 bytes each; count 4 wins
    assert_eq!(bounds(&store, "a"), (Some(3), 6, true));
    let mut again = vec![first.clone(), Appending::new(ChatMessage { text: "other".into(), ..first.message })];
    store.append(&mut again).unwrap();
    assert_eq!(again[0].outcome, Outcome::Duplicate(1), "removed, still recognized");
    assert_eq!(again[1].outcome, Outcome::Conflict(1), "and its text told apart");
    let big = "x".repeat(11);
    let mut batch = vec![draft("a", &big, 2_000)];
    store.append(&mut batch).unwrap();
    assert_eq!(bounds(&store, "a"), (Some(7), 7, true), "by bytes: only the newest fits, and it stays");
    // Quota: a third group is refused.
    append(&store, "b", 1);
    let mut third = vec![draft("c", "x", 1)];
    store.append(&mut third).unwrap();
    assert_eq!(third[0].outcome, Outcome::OverQuota);
}

/// Retention finds what to prune from the groups table: its byte totals
/// and oldest numbers stay those of the messages, through appends, pruning
/// by count, bytes and age, and eviction.
#[test]
fn sqlite_group_totals_stay_true() {
    let db = TempDb::new();
    let store = sqlite(&db.0);
    let check = || {
        let connection = rusqlite::Connection::open(&db.0).unwrap();
        let mut statement = connection
            .prepare(
                "SELECT g.name, g.bytes, g.oldest,
                        (SELECT COALESCE(SUM(length(CAST(text AS BLOB))), 0) FROM messages WHERE grp = g.name),
                        (SELECT MIN(seq) FROM messages WHERE grp = g.name)
                 FROM groups g",
            )
            .unwrap();
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (name, bytes, oldest, actual_bytes, actual_oldest) = row.unwrap();
            assert_eq!((bytes, Some(oldest)), (actual_bytes, actual_oldest), "group {name}");
        }
    };
    append(&store, "a", 10);
    append(&store, "b", 3);
    check();
    store.prune(&Retention { max_messages: Some(6), ..Retention::default() }, 0).unwrap();
    check();
    store.prune(&Retention { max_bytes: Some(5), ..Retention::default() }, 0).unwrap();
    check();
    assert_eq!(bounds(&store, "a"), (Some(9), 10, true));
    store.prune(&Retention { max_age: Some(Duration::from_millis(1)), ..Retention::default() }, 1_009).unwrap();
    check();
    assert_eq!(bounds(&store, "b"), (None, 0, false), "emptied by age, removed");
}

#[test]
fn a_revocation_keeps_the_later_time_and_is_listed() {
    every_store(|store| {
        let (mallory, eve) = (ClientId(Uuid::new_v4()), ClientId(Uuid::new_v4()));
        store.revoke(mallory, 2_000).unwrap();
        store.revoke(mallory, 1_000).unwrap();
        store.revoke(eve, 3_000).unwrap();
        let mut listed = store.revocations().unwrap();
        listed.retain(|(sub, _)| *sub == mallory || *sub == eve);
        listed.sort_by_key(|(_, min_iat)| *min_iat);
        assert_eq!(listed, [(mallory, 2_000), (eve, 3_000)], "the later of two revocations");
    });
}

#[test]
fn bans_are_kept_until_they_end_or_are_lifted() {
    every_store(|store| {
        let ban = |until_ms| Ban {
            id: Uuid::new_v4(),
            sub: Some(ClientId(Uuid::new_v4())),
            network: Some("192.0.2.0/24".parse().unwrap()),
            until_ms,
            reason: "spam".into(),
            created_ms: 1,
        };
        let (short, long, lifted) = (ban(2_000), ban(9_000), ban(9_000));
        for ban in [&short, &long, &lifted] {
            store.ban(ban).unwrap();
        }
        assert!(store.lift(lifted.id).unwrap());
        assert!(!store.lift(lifted.id).unwrap(), "lifted once");
        let ours = |now_ms| {
            let mut listed: Vec<Ban> = store.bans(now_ms).unwrap();
            listed.retain(|listed| [short.id, long.id, lifted.id].contains(&listed.id));
            listed.sort_by_key(|ban| ban.until_ms);
            listed
        };
        assert_eq!(ours(1_999), [short.clone(), long.clone()]);
        assert_eq!(ours(2_000), std::slice::from_ref(&long), "over at until_ms");
        assert_eq!(ours(1_000), std::slice::from_ref(&long), "and removed");
        let extended = Ban { until_ms: 10_000, ..long.clone() };
        store.ban(&extended).unwrap();
        assert_eq!(ours(1_000), [extended], "one ban per id: the later replaces it");
    });
}

#[test]
fn a_ban_survives_a_restart() {
    let db = TempDb::new();
    let ban = Ban { id: Uuid::new_v4(), sub: None, network: None, until_ms: 5, reason: String::new(), created_ms: 0 };
    sqlite(&db.0).ban(&ban).unwrap();
    assert_eq!(sqlite(&db.0).bans(4).unwrap(), [ban]);
}

#[test]
fn a_revocation_survives_a_restart() {
    let db = TempDb::new();
    let sub = ClientId(Uuid::new_v4());
    sqlite(&db.0).revoke(sub, 42).unwrap();
    assert_eq!(sqlite(&db.0).revocations().unwrap(), [(sub, 42)]);
}

/// At the size limit, the group that appended the most in the last hour
/// makes the room: a flooder erases its own history, not a quiet room's.
#[test]
fn sqlite_at_its_size_limit_takes_from_the_heaviest_recent_group_first() {
    let db = TempDb::new();
    let now = unix_millis();
    {
        let store = sqlite(&db.0);
        // A quiet room, written to two hours ago.
        let mut quiet: Vec<_> = (0..50).map(|i| draft("quiet", &format!("q{i}"), now - 7_200_000 + i)).collect();
        store.append(&mut quiet).unwrap();
    }
    let size = std::fs::metadata(&db.0).unwrap().len();
    let options =
        SqliteOptions { max_database_bytes: Some(size + 192 * 1024), ..SqliteOptions::new(Durability::Normal) };
    let store = SqliteStore::open(&db.0, options).unwrap();
    let text = "f".repeat(2_000);
    let mut refusals = 0;
    for i in 0..1_000 {
        if store.append(&mut [draft("flood", &text, now + i)]).is_err() {
            refusals += 1;
        }
    }
    assert!(refusals > 0, "the limit was reached");
    assert_eq!(latest(&store, "quiet", 100).len(), 50, "the quiet room kept all its history");
    let (oldest, last, _) = bounds(&store, "flood");
    assert!(oldest.unwrap() > 1 && last > 500, "the flood made its own room: {oldest:?}..={last}");
}

/// `--group-idle-age`: a group nothing was written to for that long, and
/// nobody is in, goes with its history and frees its place under the
/// quota; an occupied or a recent one stays.
#[test]
fn idle_groups_nobody_is_in_are_removed_and_free_their_place() {
    let check = |store: &dyn Store| {
        for (name, ts) in [("idle", 1_000), ("occupied", 1_000), ("recent", 9_000)] {
            store.append(&mut [draft(name, "hello", ts)]).unwrap();
        }
        let epoch = store.head(&group("idle")).unwrap().epoch;
        let occupied = |name: &GroupName| name.as_str() == "occupied";
        assert_eq!(store.remove_idle_groups(5_000, &occupied).unwrap(), 1);
        assert_eq!(bounds(store, "idle"), (None, 0, false), "gone with its history");
        assert_eq!(latest(store, "occupied", 10).len(), 1);
        assert_eq!(latest(store, "recent", 10).len(), 1);
        // Its place is free (the store was at its quota of three), and it
        // comes back in a new epoch.
        let mut again = [draft("idle", "back", 9_600)];
        store.append(&mut again).unwrap();
        assert_eq!(again[0].outcome, Outcome::New);
        assert_ne!(again[0].epoch, epoch, "created again, in a new epoch");
    };
    check(&MemoryStore::with_max_groups(Some(3)));
    let db = TempDb::new();
    let options = SqliteOptions { max_groups: Some(3), ..SqliteOptions::new(Durability::Normal) };
    check(&SqliteStore::open(&db.0, options).unwrap());
}

/// Redis: a group whose keys are gone (deleted by hand, evicted) gives its
/// place under the quota back at the next retention run.
#[test]
#[cfg(feature = "redis-tests")]
fn redis_forgets_groups_whose_history_vanished() {
    let redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
    let store = RedisStore::open(&redis.url(), RedisOptions::default()).unwrap();
    append(&store, "kept", 1);
    append(&store, "vanishing", 1);
    let mut connection = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("rc:{vanishing}:*").query(&mut connection).unwrap();
    let _: () = redis::cmd("DEL").arg(&keys).query(&mut connection).unwrap();
    store.prune(&Retention::default(), 0).unwrap();
    let mut names: Vec<String> = redis::cmd("SMEMBERS").arg("rc:groups").query(&mut connection).unwrap();
    names.sort();
    assert_eq!(names, ["kept"]);
}

fn someone() -> ClientId {
    ClientId(Uuid::new_v4())
}

fn cursor(epoch: &str, seq: u64) -> Cursor {
    Cursor { epoch: epoch.into(), seq }
}

/// Sets one cursor at `now_ms`; returns it as it now is.
fn set(store: &dyn Store, sub: ClientId, group_name: &str, at: Cursor, now_ms: u64) -> Cursor {
    let write = CursorWrite { sub, group: group(group_name), cursor: at };
    store.set_cursors(&[write], now_ms).unwrap().remove(0)
}

#[test]
fn a_cursor_only_moves_forward_within_an_epoch_and_another_epoch_replaces_it() {
    every_store(|store| {
        let (ann, bob) = (someone(), someone());
        assert_eq!(store.cursor(ann, &group("a")).unwrap(), None);
        assert_eq!(set(store, ann, "a", cursor("e1", 5), 10), cursor("e1", 5));
        assert_eq!(set(store, ann, "a", cursor("e1", 3), 11), cursor("e1", 5), "a lower number is ignored");
        assert_eq!(set(store, ann, "a", cursor("e1", 8), 12), cursor("e1", 8));
        assert_eq!(set(store, ann, "a", cursor("e2", 2), 13), cursor("e2", 2), "a new epoch starts over");
        assert_eq!(store.cursor(ann, &group("a")).unwrap(), Some(cursor("e2", 2)));
        assert_eq!(store.cursor(bob, &group("a")).unwrap(), None, "each identity has its own");
        // One batch: in order, each write seeing the ones before it.
        let writes = [
            CursorWrite { sub: bob, group: group("a"), cursor: cursor("e2", 7) },
            CursorWrite { sub: bob, group: group("a"), cursor: cursor("e2", 6) },
            CursorWrite { sub: bob, group: group("b"), cursor: cursor("f", 1) },
        ];
        assert_eq!(store.set_cursors(&writes, 14).unwrap(), [cursor("e2", 7), cursor("e2", 7), cursor("f", 1)]);
        let listed = store.cursors(bob).unwrap();
        let listed: Vec<_> =
            listed.iter().map(|entry| (entry.group.as_str(), entry.cursor.seq, entry.updated_ms)).collect();
        assert_eq!(listed, [("b", 1, 14), ("a", 7, 14)]);
        assert_eq!(store.set_cursors(&[], 15).unwrap(), []);
    });
}

#[test]
fn an_invitation_is_set_only_where_there_is_no_cursor() {
    every_store(|store| {
        let (ann, bob) = (someone(), someone());
        assert_eq!(set(store, ann, "dm", cursor("", 0), 10), cursor("", 0), "a room in the list, nothing read");
        assert_eq!(store.cursors(ann).unwrap()[0].group.as_str(), "dm");
        assert_eq!(set(store, ann, "dm", cursor("e1", 4), 11), cursor("e1", 4), "read: it moves");
        assert_eq!(set(store, ann, "dm", cursor("", 0), 12), cursor("e1", 4), "invited again: it stays");
        assert_eq!(store.cursors(ann).unwrap()[0].updated_ms, 12, "but the room moved up");
        assert_eq!(set(store, bob, "dm", cursor("", 0), 13), cursor("", 0));
    });
}

#[test]
fn an_identity_keeps_its_most_recently_set_cursors_and_can_forget_one() {
    every_store(|store| {
        let (ann, bob) = (someone(), someone());
        let writes: Vec<_> = (0..CURSORS_PER_IDENTITY)
            .map(|i| CursorWrite { sub: ann, group: group(&format!("g{i}")), cursor: cursor("e", 1) })
            .collect();
        // Set one at a time, each later than the one before.
        for (i, write) in writes.iter().enumerate() {
            store.set_cursors(std::slice::from_ref(write), 1_000 + i as u64).unwrap();
        }
        set(store, bob, "g0", cursor("e", 1), 1);
        // g0 is set again (a lower number: still a setting), so g1 is the
        // least recent when one more comes.
        set(store, ann, "g0", cursor("e", 0), 5_000);
        set(store, ann, "new", cursor("e", 3), 5_001);
        let listed = store.cursors(ann).unwrap();
        assert_eq!(listed.len(), CURSORS_PER_IDENTITY);
        assert_eq!((listed[0].group.as_str(), listed[0].cursor.seq, listed[0].updated_ms), ("new", 3, 5_001));
        assert_eq!((listed[1].group.as_str(), listed[1].updated_ms), ("g0", 5_000));
        assert_eq!(listed.last().unwrap().group.as_str(), "g2");
        assert_eq!(store.cursor(ann, &group("g1")).unwrap(), None, "the least recently set went");
        assert_eq!(store.cursors(bob).unwrap().len(), 1, "another identity's are its own");

        assert!(store.forget(ann, &group("g7")).unwrap());
        assert!(!store.forget(ann, &group("g7")).unwrap(), "gone already");
        assert_eq!(store.cursor(ann, &group("g7")).unwrap(), None);
        assert_eq!(store.cursors(ann).unwrap().len(), CURSORS_PER_IDENTITY - 1);
        assert_eq!(store.cursor(bob, &group("g0")).unwrap(), Some(cursor("e", 1)));
    });
}

/// `group_name`'s readers within `limit`, in the order of their ids.
fn readers(store: &dyn Store, group_name: &str, limit: usize) -> Option<Vec<(ClientId, Cursor)>> {
    let mut readers = store.readers(&group(group_name), limit).unwrap()?;
    readers.sort_by_key(|(sub, _)| sub.0);
    Some(readers)
}

fn sorted(mut readers: Vec<(ClientId, Cursor)>) -> Vec<(ClientId, Cursor)> {
    readers.sort_by_key(|(sub, _)| sub.0);
    readers
}

#[test]
fn a_groups_readers_are_its_cursors_unless_there_are_more_than_the_limit() {
    every_store(|store| {
        let (ann, bob, cat) = (someone(), someone(), someone());
        assert_eq!(readers(store, "small", 2), Some(Vec::new()), "nobody yet");
        set(store, ann, "small", cursor("e", 3), 10);
        set(store, bob, "small", cursor("", 0), 11);
        set(store, bob, "other", cursor("f", 1), 12);
        set(store, ann, "small", cursor("e", 5), 13);
        set(store, ann, "small", cursor("e", 4), 14);
        let two = sorted(vec![(ann, cursor("e", 5)), (bob, cursor("", 0))]);
        assert_eq!(readers(store, "small", 2), Some(two.clone()), "each as it now is, an invitation too");
        set(store, cat, "small", cursor("e", 1), 15);
        assert_eq!(readers(store, "small", 2), None, "one more than the limit");
        assert_eq!(readers(store, "small", 3).map(|readers| readers.len()), Some(3));
        assert!(store.forget(cat, &group("small")).unwrap());
        assert_eq!(readers(store, "small", 2), Some(two), "a forgotten room is no one's read any more");
        assert_eq!(readers(store, "other", 1), Some(vec![(bob, cursor("f", 1))]));
        assert_eq!(readers(store, "other", 0), None);
    });
}

#[test]
fn a_cursor_an_identity_no_longer_keeps_leaves_its_groups_readers() {
    every_store(|store| {
        let (ann, bob) = (someone(), someone());
        set(store, bob, "g0", cursor("e", 2), 1);
        for i in 0..=CURSORS_PER_IDENTITY {
            set(store, ann, &format!("g{i}"), cursor("e", 1), 1_000 + i as u64);
        }
        assert_eq!(store.cursor(ann, &group("g0")).unwrap(), None);
        assert_eq!(readers(store, "g0", 10), Some(vec![(bob, cursor("e", 2))]), "ann's went from g0's readers too");
        assert_eq!(readers(store, "g1", 10), Some(vec![(ann, cursor("e", 1))]));
    });
}

#[test]
fn cursors_survive_reopening_an_sqlite_store() {
    let db = TempDb::new();
    let ann = someone();
    set(&sqlite(&db.0), ann, "a", cursor("e", 4), 10);
    let reopened = sqlite(&db.0);
    assert_eq!(reopened.cursor(ann, &group("a")).unwrap(), Some(cursor("e", 4)));
    assert_eq!(set(&reopened, ann, "a", cursor("e", 2), 11), cursor("e", 4), "still monotonic");
}

/// A database of schema 6 (before cursors) gets the table, empty.
#[test]
fn sqlite_adds_cursors_to_a_schema_6_database() {
    let db = TempDb::new();
    let stored = append(&sqlite(&db.0), "a", 2);
    {
        let old = rusqlite::Connection::open(&db.0).unwrap();
        old.execute_batch("DROP TABLE cursors; PRAGMA user_version = 6;").unwrap();
    }
    let store = sqlite(&db.0);
    assert_eq!(latest(&store, "a", 10), stored);
    let ann = someone();
    assert_eq!(store.cursor(ann, &group("a")).unwrap(), None);
    assert_eq!(set(&store, ann, "a", cursor("e", 2), 1), cursor("e", 2));
}

#[test]
#[cfg(feature = "redis-tests")]
fn cursors_survive_a_redis_restart() {
    let mut redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
    let store = RedisStore::open(&redis.url(), RedisOptions::default()).unwrap();
    let ann = someone();
    set(&store, ann, "a", cursor("e", 4), 10);
    redis.restart().unwrap();
    assert_eq!(store.cursor(ann, &group("a")).unwrap(), Some(cursor("e", 4)));
    assert_eq!(set(&store, ann, "a", cursor("e", 2), 11), cursor("e", 4), "the script is loaded again");
}

/// `count` messages from `from` to `group_name`, one batch.
fn append_from(store: &dyn Store, group_name: &str, from: ClientId, count: usize) -> Vec<ChatMessage> {
    let mut batch: Vec<_> = (0..count)
        .map(|i| {
            let mut item = draft(group_name, &format!("m{i}"), 1_000);
            item.message.from.client_id = from;
            item
        })
        .collect();
    store.append(&mut batch).unwrap();
    batch.into_iter().map(|item| item.message).collect()
}

#[test]
fn unread_counts_others_messages_after_the_cursor_up_to_the_cap() {
    every_store(|store| {
        let (ann, bob) = (someone(), someone());
        let unread = |at: Option<Cursor>, cap| unread::unread(store, &group("r"), at.as_ref(), ann, cap).unwrap();
        assert_eq!(unread(None, 100), 0, "no group");
        append_from(store, "r", bob, 3);
        append_from(store, "r", ann, 2);
        assert_eq!(append_from(store, "r", bob, 3)[0].seq, 6);
        let epoch = store.head(&group("r")).unwrap().epoch;
        assert_eq!(unread(None, 100), 6, "no cursor: every retained message but her own");
        assert_eq!(unread(Some(cursor(&epoch, 3)), 100), 3, "after 3, not her own 4 and 5");
        assert_eq!(unread(Some(cursor(&epoch, 5)), 100), 3);
        assert_eq!(unread(Some(cursor(&epoch, 8)), 100), 0);
        assert_eq!(unread(Some(cursor(&epoch, 0)), 2), 2, "capped");
        assert_eq!(unread(Some(cursor("another", 8)), 100), 6, "another epoch's cursor is none");
        // Her own messages beyond a page are read past, not counted.
        append_from(store, "r", ann, 450);
        append_from(store, "r", bob, 1);
        assert_eq!(unread(Some(cursor(&epoch, 8)), 100), 1);
        append_from(store, "r", bob, 150);
        assert_eq!(unread(Some(cursor(&epoch, 8)), 100), 100, "at most the cap");
    });
}

/// After retention removed messages after the cursor, unread counts what
/// is retained (not own): `prune` keeps the last four of group `r`.
fn unread_below_the_floor(store: &dyn Store, prune: impl Fn(&dyn Store)) {
    let (ann, bob) = (someone(), someone());
    append_from(store, "r", bob, 3);
    append_from(store, "r", ann, 2);
    append_from(store, "r", bob, 3);
    prune(store);
    let head = store.head(&group("r")).unwrap();
    assert_eq!((head.oldest, head.last), (Some(5), 8));
    let unread = |seq| unread::unread(store, &group("r"), Some(&cursor(&head.epoch, seq)), ann, 100).unwrap();
    assert_eq!(unread(2), 3, "retained after the floor: 5 (hers), 6, 7, 8");
    assert_eq!(unread(6), 2);
}

#[test]
fn unread_below_the_retention_floor_is_what_is_retained() {
    each_store(|store| {
        unread_below_the_floor(store, |store| {
            store.prune(&Retention { max_messages: Some(4), ..Retention::default() }, 2_000).unwrap();
        });
    });
}

#[test]
#[cfg(feature = "redis-tests")]
fn redis_unread_below_the_retention_floor_is_what_is_retained() {
    let redis = roomcast_testkit::LocalRedis::start().expect("a local redis-server");
    let options = RedisOptions { max_messages: Some(4), ..RedisOptions::default() };
    unread_below_the_floor(&RedisStore::open(&redis.url(), options).unwrap(), |_| {});
}
