//! The store contract, checked against both stores; the replay plan; history
//! pages.

use std::path::PathBuf;
use std::time::Duration;

use roomcast_shared::{ChatMessage, ClientId, GroupName, MessageId, Sender};
use uuid::Uuid;

use super::memory::{hooked::Hooked, MemoryStore};
use super::sqlite::{Durability, SqliteStore};
use super::*;

fn group(name: &str) -> GroupName {
    name.parse().unwrap()
}

fn draft(group_name: &str, text: &str, ts: u64) -> Appending {
    Appending {
        message: ChatMessage {
            group: group(group_name),
            seq: 0,
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: ClientId(Uuid::new_v4()), name: Some("Ann".parse().unwrap()), verified: true },
            text: text.into(),
            ts,
        },
        outcome: Outcome::Pending,
    }
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
    check(&SqliteStore::open(&db.0, Durability::Normal).unwrap());
}

#[test]
fn sequence_numbers_are_consecutive_per_group() {
    each_store(|store| {
        let mut batch = vec![draft("a", "1", 1), draft("b", "1", 1), draft("a", "2", 1)];
        store.append(&mut batch).unwrap();
        assert_eq!(
            batch.iter().map(|i| (i.message.seq, i.outcome)).collect::<Vec<_>>(),
            [(1, Outcome::New), (1, Outcome::New), (2, Outcome::New)]
        );
        assert_eq!(seqs(&append(store, "a", 2)), [3, 4]);
        assert_eq!(store.bounds(&group("a")).unwrap(), Bounds { oldest: Some(1), last: 4 });
        assert_eq!(store.bounds(&group("new")).unwrap(), Bounds { oldest: None, last: 0 });
    });
}

#[test]
fn a_message_id_is_stored_once_per_group() {
    each_store(|store| {
        let first = draft("a", "once", 1);
        let mut batch = vec![first.clone()];
        store.append(&mut batch).unwrap();
        // Again in a later batch, and twice within one batch.
        let mut again = vec![first.clone(), draft("a", "other", 1), first.clone()];
        store.append(&mut again).unwrap();
        assert_eq!(again[0].outcome, Outcome::Duplicate(1));
        assert_eq!(again[1].outcome, Outcome::New);
        assert_eq!(again[2].outcome, Outcome::Duplicate(1));
        assert_eq!(seqs(&store.latest(&group("a"), 10).unwrap()), [1, 2]);
        // The same id in another group is another message.
        let mut elsewhere =
            vec![Appending { message: ChatMessage { group: group("b"), ..first.message }, outcome: Outcome::Pending }];
        store.append(&mut elsewhere).unwrap();
        assert_eq!(elsewhere[0].outcome, Outcome::New);
    });
}

#[test]
fn reads_return_pages_oldest_first() {
    each_store(|store| {
        let stored = append(store, "a", 10);
        assert_eq!(store.latest(&group("a"), 3).unwrap(), stored[7..].to_vec());
        assert_eq!(seqs(&store.after(&group("a"), 4, 3).unwrap()), [5, 6, 7]);
        assert_eq!(seqs(&store.after(&group("a"), 10, 3).unwrap()), Vec::<u64>::new());
        assert_eq!(seqs(&store.before(&group("a"), 5, 2).unwrap()), [3, 4]);
        assert_eq!(seqs(&store.before(&group("a"), 2, 5).unwrap()), [1]);
        assert!(store.latest(&group("none"), 5).unwrap().is_empty());
    });
}

#[test]
fn retention_by_count_and_age_keeps_numbering() {
    each_store(|store| {
        append(store, "a", 10); // ts 1000..1009
        append(store, "b", 3);
        let by_count = Retention { max_messages: Some(4), max_age: None };
        assert_eq!(store.prune(&by_count, 0).unwrap(), 6);
        assert_eq!(store.bounds(&group("a")).unwrap(), Bounds { oldest: Some(7), last: 10 });
        let by_age = Retention { max_messages: None, max_age: Some(Duration::from_millis(2)) };
        // now = 1010: messages older than ts 1008 go (a: 7 and 8; b: all three).
        assert_eq!(store.prune(&by_age, 1_010).unwrap(), 5);
        assert_eq!(store.bounds(&group("a")).unwrap(), Bounds { oldest: Some(9), last: 10 });
        assert_eq!(store.bounds(&group("b")).unwrap(), Bounds { oldest: None, last: 3 });
        assert_eq!(seqs(&append(store, "b", 1)), [4], "numbers are never reused");
    });
}

#[test]
fn sqlite_keeps_everything_across_reopening() {
    let db = TempDb::new();
    let stored = {
        let store = SqliteStore::open(&db.0, Durability::Full).unwrap();
        append(&store, "a", 5)
    };
    let store = SqliteStore::open(&db.0, Durability::Full).unwrap();
    assert_eq!(store.latest(&group("a"), 10).unwrap(), stored);
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
    let store = SqliteStore::open(&db.0, Durability::Normal).unwrap();
    let old = store.latest(&group("a"), 1).unwrap().remove(0);
    assert_eq!((old.text.as_str(), old.from.verified), ("before identities", false));
    let new = append(&store, "a", 1).remove(0);
    assert_eq!(new.seq, 2);
    let reopened = SqliteStore::open(&db.0, Durability::Normal).unwrap();
    assert_eq!(reopened.latest(&group("a"), 2).unwrap(), vec![old, new], "verified is stored");
}

/// The recovery table: what a client with `since` gets.
#[test]
fn replay_plans() {
    let store = MemoryStore::default();
    let lobby = group("lobby");
    let plan = |since, latest| plan_replay(&store, &lobby, since, latest).unwrap();

    // Empty group.
    assert_eq!(plan(None, 100), Replay { gap: None, messages: vec![], synced: 0 });
    assert_eq!(plan(Some(0), 100), Replay { gap: None, messages: vec![], synced: 0 });

    append(&store, "lobby", 10);
    store.prune(&Retention { max_messages: Some(6), max_age: None }, 0).unwrap(); // keeps 5..=10

    // No since: the latest page.
    let fresh = plan(None, 3);
    assert_eq!((fresh.gap, seqs(&fresh.messages), fresh.synced), (None, vec![8, 9, 10], 10));
    // Since = latest: nothing to replay.
    let current = plan(Some(10), 3);
    assert_eq!((current.gap, seqs(&current.messages), current.synced), (None, vec![], 10));
    // Since inside the history: everything after it, however many.
    let behind = plan(Some(6), 2);
    assert_eq!((behind.gap, seqs(&behind.messages), behind.synced), (None, vec![7, 8, 9, 10], 10));
    // Since just before the oldest kept: still complete.
    assert_eq!(seqs(&plan(Some(4), 2).messages), [5, 6, 7, 8, 9, 10]);
    // Since older than retention: the exact missing range, then everything
    // kept, from the oldest kept on (not the latest page): the client's
    // timeline has no hole but the one it is told about.
    let lost = plan(Some(2), 2);
    assert_eq!((lost.gap, seqs(&lost.messages), lost.synced), (Some((3, 4)), vec![5, 6, 7, 8, 9, 10], 10));
    assert_eq!(plan(Some(0), 2).gap, Some((1, 4)));
    // Since in the future: the numbers the group never reached, then the latest page.
    let future = plan(Some(15), 2);
    assert_eq!((future.gap, seqs(&future.messages), future.synced), (Some((11, 15)), vec![9, 10], 10));
}

/// After a gap, the replay picks up exactly where the gap ends and runs
/// without a hole to `synced`, however much is kept.
#[test]
fn replay_after_a_retention_gap_is_contiguous() {
    let store = MemoryStore::default();
    let lobby = group("lobby");
    append(&store, "lobby", 300);
    store.prune(&Retention { max_messages: Some(250), max_age: None }, 0).unwrap(); // keeps 51..=300
    let replay = plan_replay(&store, &lobby, Some(7), 100).unwrap();
    assert_eq!(replay.gap, Some((8, 50)));
    assert_eq!(replay.messages.first().map(|m| m.seq), Some(51), "right after the gap: the oldest kept");
    assert_eq!(seqs(&replay.messages), (51..=300).collect::<Vec<_>>(), "not capped by the page size");
    assert_eq!(replay.synced, 300);

    // Retention removed everything: the gap runs to the group's last number,
    // and the client is synced there.
    store.prune(&Retention { max_messages: Some(0), max_age: None }, 0).unwrap();
    let emptied = plan_replay(&store, &lobby, Some(7), 100).unwrap();
    assert_eq!(emptied, Replay { gap: Some((8, 300)), messages: vec![], synced: 300 });
}

/// A store that prunes to its last `keep` messages right before each
/// `after` read: retention running between the replay's two reads.
struct PrunesBeforeAfter {
    inner: MemoryStore,
    keep: u64,
}

impl Hooked for PrunesBeforeAfter {
    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn before_after(&self) -> Result<(), HistoryError> {
        self.inner.prune(&Retention { max_messages: Some(self.keep), max_age: None }, 0).map(drop)
    }
}

/// The gap is taken from what the replay read, so a prune between reading
/// the bounds and reading the messages widens it instead of leaving a silent
/// hole behind it.
#[test]
fn a_prune_during_the_replay_widens_the_gap() {
    let store = PrunesBeforeAfter { inner: MemoryStore::default(), keep: 4 };
    let lobby = group("lobby");
    append(&store, "lobby", 10);
    // The bounds say 1..=10 are kept; by the read only 7..=10 are.
    let inside = plan_replay(&store, &lobby, Some(3), 100).unwrap();
    assert_eq!((inside.gap, seqs(&inside.messages), inside.synced), (Some((4, 6)), vec![7, 8, 9, 10], 10));
}

/// A page of large messages is cut to the byte bound, keeping the messages
/// nearest to where it was asked from, and says there is more.
#[test]
fn pages_are_bounded_in_bytes() {
    let big = |seq: u64| ChatMessage { seq, text: "x".repeat(100), ..draft("g", "", 0).message };
    let page = || (1..=10).map(big).collect::<Vec<_>>();
    let one = serde_json::to_vec(&big(1)).unwrap().len();
    let mut before = page();
    keep_within_bytes(&mut before, &PageFrom::Before(None), one * 3 + 1);
    assert_eq!(seqs(&before), [8, 9, 10], "the newest of a page back");
    let mut after = page();
    keep_within_bytes(&mut after, &PageFrom::After(0), one * 3 + 1);
    assert_eq!(seqs(&after), [1, 2, 3], "the oldest of a page forward");
    let mut single = page();
    keep_within_bytes(&mut single, &PageFrom::After(0), 1);
    assert_eq!(seqs(&single), [1], "at least one");
}

/// History pages: back from `before` (or the latest), forward from `after`,
/// each with `has_more` pointing its own way.
#[tokio::test]
async fn pages_go_back_and_forward() {
    let store = Arc::new(MemoryStore::default());
    append(store.as_ref(), "lobby", 10);
    store.prune(&Retention { max_messages: Some(8), max_age: None }, 0).unwrap(); // keeps 3..=10
    let history = History::new(store);
    let page = |from, limit| {
        let history = history.clone();
        async move {
            let (messages, has_more) = history.page(group("lobby"), from, limit).await.unwrap();
            (seqs(&messages), has_more)
        }
    };
    assert_eq!(page(PageFrom::Before(None), 3).await, (vec![8, 9, 10], true));
    assert_eq!(page(PageFrom::Before(Some(6)), 5).await, (vec![3, 4, 5], false));
    assert_eq!(page(PageFrom::After(4), 3).await, (vec![5, 6, 7], true));
    assert_eq!(page(PageFrom::After(7), 3).await, (vec![8, 9, 10], false));
    assert_eq!(page(PageFrom::After(10), 3).await, (vec![], false));
    assert_eq!(page(PageFrom::After(99), 3).await, (vec![], false));
    // After a number retention removed: from the oldest kept on.
    assert_eq!(page(PageFrom::After(0), 2).await, (vec![3, 4], true));
    assert_eq!(page(PageFrom::After(0), 3).await.0, [3, 4, 5]);
}
