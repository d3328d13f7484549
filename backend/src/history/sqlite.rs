//! The SQLite store: one file, WAL mode. This is the only module that
//! touches SQLite.
//!
//! One writer connection (used by the sequencer thread and retention, one
//! at a time) and a small pool of read-only connections, which WAL lets run
//! beside the writer. A group's last sequence number is stored in the same
//! transaction as its messages, so numbers are never reused, after a crash
//! or after retention removed every message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use roomcast_shared::{ChatMessage, ClientId, GroupName, MessageId, Sender};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use uuid::Uuid;

use super::store::{Appending, Bounds, HistoryError, Outcome, Retention, Store};

/// Bumped with every schema change; checked at open.
/// - 1: groups and messages.
/// - 2: `messages.verified` (earlier messages read as unverified).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS groups (
        name     TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS messages (
        grp       TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        id        BLOB    NOT NULL,
        client_id BLOB    NOT NULL,
        name      TEXT,
        text      TEXT    NOT NULL,
        ts        INTEGER NOT NULL,
        verified  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (grp, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (grp, id);
    CREATE INDEX IF NOT EXISTS messages_by_ts ON messages (ts);
";

const COLUMNS: &str = "grp, seq, id, client_id, name, text, ts, verified";

/// Brings a database of an earlier schema version up to this one.
const MIGRATIONS: [(i64, &str); 1] = [(1, "ALTER TABLE messages ADD COLUMN verified INTEGER NOT NULL DEFAULT 0")];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// fsync on every commit (group commit amortizes it): an acknowledged
    /// message survives a power cut.
    Full,
    /// No fsync per commit: an acknowledged message survives a crash of the
    /// process, not of the machine.
    Normal,
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
}

struct Writer {
    connection: Connection,
    /// Last sequence number per group, as committed.
    last_seq: HashMap<GroupName, u64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, HistoryError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| HistoryError::Open { path: dir.display().to_string(), source })?;
        }
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        connection.pragma_update(None, "synchronous", synchronous)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::Corrupt(format!(
                "{} has schema version {version}; this server knows up to {SCHEMA_VERSION}",
                path.display()
            )));
        }
        connection.execute_batch(SCHEMA)?;
        for (from, migration) in MIGRATIONS {
            if version == from {
                connection.execute_batch(migration)?;
            }
        }
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(Writer { connection, last_seq: HashMap::new() }),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic mid-transaction drops the transaction (rollback); the
        // cached sequence numbers are cleared on every failed append.
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `read` on a pooled read-only connection.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T, HistoryError>) -> Result<T, HistoryError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let connection = Connection::open_with_flags(&self.path, flags)?;
                connection.busy_timeout(std::time::Duration::from_secs(5))?;
                connection
            }
        };
        let result = read(&connection);
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
        result
    }

    fn query(&self, sql: &str, group: &GroupName, bound: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            let rows =
                statement.query_map(params![group.as_str(), to_sql(bound), to_sql(limit as u64)], row_to_message)?;
            rows.map(|row| row?).collect()
        })
    }
}

impl Writer {
    fn last_seq(&mut self, group: &GroupName) -> Result<u64, HistoryError> {
        if let Some(&seq) = self.last_seq.get(group) {
            return Ok(seq);
        }
        let seq: Option<i64> = self
            .connection
            .query_row("SELECT last_seq FROM groups WHERE name = ?1", [group.as_str()], |row| row.get(0))
            .optional()?;
        let seq = seq.unwrap_or(0) as u64;
        self.last_seq.insert(group.clone(), seq);
        Ok(seq)
    }

    fn append(&mut self, batch: &mut [Appending]) -> Result<(), HistoryError> {
        // The last sequence number of every group in the batch, read before
        // the transaction borrows the connection.
        let mut last: HashMap<GroupName, u64> = HashMap::new();
        for item in batch.iter() {
            if !last.contains_key(&item.message.group) {
                let seq = self.last_seq(&item.message.group)?;
                last.insert(item.message.group.clone(), seq);
            }
        }
        let mut advanced: HashMap<GroupName, u64> = HashMap::new();
        let transaction = self.connection.transaction()?;
        {
            let mut find = transaction.prepare_cached("SELECT seq FROM messages WHERE grp = ?1 AND id = ?2")?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO messages (grp, seq, id, client_id, name, text, ts, verified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for item in batch.iter_mut() {
                let message = &mut item.message;
                let existing: Option<i64> = find
                    .query_row(params![message.group.as_str(), message.id.0.as_bytes()], |row| row.get(0))
                    .optional()?;
                if let Some(seq) = existing {
                    item.outcome = Outcome::Duplicate(seq as u64);
                    continue;
                }
                let seq = last.get(&message.group).copied().unwrap_or(0) + 1;
                message.seq = seq;
                insert.execute(params![
                    message.group.as_str(),
                    to_sql(seq),
                    message.id.0.as_bytes(),
                    message.from.client_id.0.as_bytes(),
                    message.from.name.as_ref().map(|name| name.as_str()),
                    message.text,
                    to_sql(message.ts),
                    message.from.verified,
                ])?;
                item.outcome = Outcome::New;
                last.insert(message.group.clone(), seq);
                advanced.insert(message.group.clone(), seq);
            }
            let mut save = transaction.prepare_cached(
                "INSERT INTO groups (name, last_seq) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq",
            )?;
            for (group, seq) in &advanced {
                save.execute(params![group.as_str(), to_sql(*seq)])?;
            }
        }
        transaction.commit()?;
        self.last_seq.extend(advanced);
        Ok(())
    }
}

impl Store for SqliteStore {
    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
        let mut writer = self.writer();
        let result = writer.append(batch);
        if result.is_err() {
            writer.last_seq.clear();
            for item in batch.iter_mut() {
                item.outcome = Outcome::Pending;
            }
        }
        result
    }

    fn latest(&self, group: &GroupName, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        self.before(group, u64::MAX, limit)
    }

    fn after(&self, group: &GroupName, after: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE grp = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
        self.query(&sql, group, after, limit)
    }

    fn before(&self, group: &GroupName, before: u64, limit: usize) -> Result<Vec<ChatMessage>, HistoryError> {
        let sql = format!(
            "SELECT * FROM (SELECT {COLUMNS} FROM messages WHERE grp = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3)
             ORDER BY seq"
        );
        self.query(&sql, group, before, limit)
    }

    fn bounds(&self, group: &GroupName) -> Result<Bounds, HistoryError> {
        self.read(|connection| {
            let last: Option<i64> = connection
                .query_row("SELECT last_seq FROM groups WHERE name = ?1", [group.as_str()], |row| row.get(0))
                .optional()?;
            let oldest: Option<i64> =
                connection
                    .query_row("SELECT MIN(seq) FROM messages WHERE grp = ?1", [group.as_str()], |row| row.get(0))?;
            Ok(Bounds { oldest: oldest.map(|seq| seq as u64), last: last.unwrap_or(0) as u64 })
        })
    }

    fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError> {
        let writer = self.writer();
        let mut removed = 0;
        if let Some(age) = retention.max_age {
            let cutoff = now_ms.saturating_sub(age.as_millis() as u64);
            removed += writer.connection.execute("DELETE FROM messages WHERE ts < ?1", [to_sql(cutoff)])? as u64;
        }
        if let Some(max) = retention.max_messages {
            // Sequence numbers are consecutive, so the newest `max` are the
            // ones above `last_seq - max`.
            removed += writer.connection.execute(
                "DELETE FROM messages WHERE seq <= (SELECT last_seq FROM groups WHERE name = messages.grp) - ?1",
                [to_sql(max)],
            )? as u64;
        }
        Ok(removed)
    }
}

/// SQLite integers are signed; sequence numbers, timestamps and limits stay
/// far below `i64::MAX`, and larger bounds only mean "no bound".
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn row_to_message(row: &Row<'_>) -> rusqlite::Result<Result<ChatMessage, HistoryError>> {
    let group: String = row.get(0)?;
    let seq: i64 = row.get(1)?;
    let id: Vec<u8> = row.get(2)?;
    let client: Vec<u8> = row.get(3)?;
    let name: Option<String> = row.get(4)?;
    let text: String = row.get(5)?;
    let ts: i64 = row.get(6)?;
    let verified: bool = row.get(7)?;
    Ok(decode(Stored { group, seq, id: &id, client: &client, name, text, ts, verified }))
}

/// One row of `messages`, as read.
struct Stored<'a> {
    group: String,
    seq: i64,
    id: &'a [u8],
    client: &'a [u8],
    name: Option<String>,
    text: String,
    ts: i64,
    verified: bool,
}

fn decode(row: Stored<'_>) -> Result<ChatMessage, HistoryError> {
    let Stored { group, seq, id, client, name, text, ts, verified } = row;
    let corrupt = |what: &str| HistoryError::Corrupt(format!("bad {what} in stored message {group}/{seq}"));
    Ok(ChatMessage {
        seq: seq as u64,
        id: MessageId(Uuid::from_slice(id).map_err(|_| corrupt("id"))?),
        from: Sender {
            client_id: ClientId(Uuid::from_slice(client).map_err(|_| corrupt("client id"))?),
            name: name.map(|name| name.parse()).transpose().map_err(|_| corrupt("name"))?,
            verified,
        },
        text,
        ts: ts as u64,
        group: group.parse().map_err(|_| corrupt("group"))?,
    })
}
