//! The SQLite store: one file, WAL mode. This is the only module that
//! touches SQLite (its errors become [`HistoryError::Database`] here).
//!
//! One writer connection (used by the sequencer thread and retention, one
//! at a time) and a small pool of read-only connections, which WAL lets run
//! beside the writer; a read is one transaction, so one snapshot. A group's
//! last sequence number is stored in the same transaction as its messages,
//! so numbers are never reused within an epoch, even after a crash. A group
//! that retention empties is deleted; a later message creates it again in a
//! new epoch. Retention keeps the ids of the messages it removes in
//! `removed_ids` until they are a dedup window old, so that a late resend is
//! still recognized.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use roomcast_shared::{ChatMessage, ClientId, DisplayName, GroupName, MessageId, Sender};
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use uuid::Uuid;

use crate::ban::Ban;
use crate::locks::lock;
use crate::owner_only;

use super::store::{
    new_epoch, take_within, text_digest, Appending, Cursor, CursorEntry, CursorWrite, Head, HistoryError, Limit,
    Outcome, Range, Retention, Slice, Store, CURSORS_PER_IDENTITY, DEDUP_WINDOW,
};

/// Bumped with every schema change; checked at open.
/// - 1: groups and messages.
/// - 2: `messages.verified` (earlier messages read as unverified).
/// - 3: `groups.epoch` (earlier groups get a random one).
/// - 4: `groups.bytes` and `groups.oldest`, so that retention finds what to
///   prune from the groups table, without scanning every message.
/// - 5: `removed_ids` (created by `SCHEMA` like any table: no migration).
/// - 6: `revocations` (likewise).
/// - 7: `cursors` (likewise: an older database gets the table empty), and
///   later its index by group, `cursors_by_grp` (created by `SCHEMA` at
///   every open, and ignored by a server that does not use it: no bump).
/// - 8: `bans` (created by `SCHEMA`: no migration).
const SCHEMA_VERSION: i64 = 8;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS groups (
        name     TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        epoch    TEXT    NOT NULL DEFAULT '',
        bytes    INTEGER NOT NULL DEFAULT 0,
        oldest   INTEGER NOT NULL DEFAULT 0
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
    CREATE TABLE IF NOT EXISTS removed_ids (
        grp    TEXT    NOT NULL,
        id     BLOB    NOT NULL,
        seq    INTEGER NOT NULL,
        ts     INTEGER NOT NULL,
        digest BLOB    NOT NULL,
        PRIMARY KEY (grp, id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS removed_ids_by_ts ON removed_ids (ts);
    CREATE TABLE IF NOT EXISTS revocations (
        sub     BLOB    PRIMARY KEY,
        min_iat INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS cursors (
        sub     BLOB    NOT NULL,
        grp     TEXT    NOT NULL,
        epoch   TEXT    NOT NULL,
        seq     INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (sub, grp)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS cursors_by_grp ON cursors (grp);
    CREATE TABLE IF NOT EXISTS bans (
        id       BLOB    PRIMARY KEY,
        until_ms INTEGER NOT NULL,
        ban      TEXT    NOT NULL
    ) WITHOUT ROWID;
";

/// Per connection, outside the database file: see `Writer::cut`.
const TEMP_SCHEMA: &str = "
    CREATE TEMP TABLE IF NOT EXISTS cut_ids (grp TEXT, id BLOB, seq INTEGER, ts INTEGER, digest BLOB);
";

const COLUMNS: &str = "grp, seq, id, client_id, name, text, ts, verified";

/// Brings a database of an earlier schema version up to this one: each
/// migration applies to databases at its version or below.
const MIGRATIONS: [(i64, &str); 3] = [
    (1, "ALTER TABLE messages ADD COLUMN verified INTEGER NOT NULL DEFAULT 0"),
    (
        2,
        "ALTER TABLE groups ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
         UPDATE groups SET epoch = lower(hex(randomblob(8)));",
    ),
    (
        3,
        "ALTER TABLE groups ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE groups ADD COLUMN oldest INTEGER NOT NULL DEFAULT 0;
         UPDATE groups SET
             bytes = (SELECT COALESCE(SUM(length(CAST(text AS BLOB))), 0) FROM messages WHERE grp = groups.name),
             oldest = (SELECT COALESCE(MIN(seq), last_seq + 1) FROM messages WHERE grp = groups.name);",
    ),
];

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

/// How an SQLite store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Most groups held at once.
    pub max_groups: Option<u64>,
    /// Largest database file (SQLite's `max_page_count`): past it, appends
    /// fail (retryably) until retention frees pages.
    pub max_database_bytes: Option<u64>,
}

impl SqliteOptions {
    pub fn new(durability: Durability) -> Self {
        Self { durability, max_groups: None, max_database_bytes: None }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    max_groups: Option<u64>,
    /// At the size limit, the oldest messages make room (see `append`).
    limited: bool,
    /// The last append succeeded (or none failed yet).
    writable: std::sync::atomic::AtomicBool,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
}

struct Writer {
    connection: Connection,
    /// Last sequence number and epoch per group, as committed.
    groups: HashMap<GroupName, (u64, String)>,
    /// Rows of `groups`, as committed.
    group_count: u64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, HistoryError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            owner_only::create_dir(dir)
                .map_err(|source| HistoryError::Open { path: dir.display().to_string(), source })?;
        }
        let connection = Connection::open(path)?;
        // Before WAL mode: the -wal and -shm files take the database's mode.
        owner_only::restrict_database(path);
        connection.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match options.durability {
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
        connection.execute_batch(TEMP_SCHEMA)?;
        connection.create_scalar_function(
            "text_digest",
            1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |context| Ok(text_digest(&context.get::<String>(0)?).to_vec()),
        )?;
        for (at_or_below, migration) in MIGRATIONS {
            // Version 0 is a database created just now, by `SCHEMA`.
            if version != 0 && version <= at_or_below {
                connection.execute_batch(migration)?;
            }
        }
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        if let Some(bytes) = options.max_database_bytes {
            let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
            let page_size = page_size.max(1) as u64;
            connection.pragma_update(None, "max_page_count", to_sql((bytes / page_size).max(1)))?;
        }
        let group_count: i64 = connection.query_row("SELECT COUNT(*) FROM groups", [], |row| row.get(0))?;
        Ok(Self {
            path: path.to_owned(),
            max_groups: options.max_groups,
            limited: options.max_database_bytes.is_some(),
            writable: std::sync::atomic::AtomicBool::new(true),
            writer: Mutex::new(Writer { connection, groups: HashMap::new(), group_count: group_count as u64 }),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic mid-transaction drops the transaction (rollback); the
        // cache is cleared on every failed append.
        lock(&self.writer)
    }

    /// Runs `read` on a pooled read-only connection.
    fn with_reader<T>(&self, read: impl FnOnce(&mut Connection) -> Result<T, HistoryError>) -> Result<T, HistoryError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let connection = Connection::open_with_flags(&self.path, flags)?;
                connection.busy_timeout(std::time::Duration::from_secs(5))?;
                connection
            }
        };
        let result = read(&mut connection);
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
        result
    }
}

impl Writer {
    /// The group's last number and epoch; `None` for a group not stored.
    fn group(&mut self, group: &GroupName) -> Result<Option<(u64, String)>, HistoryError> {
        if let Some(known) = self.groups.get(group) {
            return Ok(Some(known.clone()));
        }
        let stored: Option<(i64, String)> = self
            .connection
            .query_row("SELECT last_seq, epoch FROM groups WHERE name = ?1", [group.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let stored = stored.map(|(seq, epoch)| (seq as u64, epoch));
        if let Some(known) = &stored {
            self.groups.insert(group.clone(), known.clone());
        }
        Ok(stored)
    }

    fn append(&mut self, batch: &mut [Appending], max_groups: Option<u64>) -> Result<(), HistoryError> {
        // Every group of the batch as stored, read before the transaction
        // borrows the connection; groups the batch creates get an epoch.
        let mut state: HashMap<GroupName, (u64, String)> = HashMap::new();
        let mut created = 0u64;
        for item in batch.iter_mut() {
            let group = &item.message.group;
            if state.contains_key(group) {
                continue;
            }
            match self.group(group)? {
                Some(known) => {
                    state.insert(group.clone(), known);
                }
                None if max_groups.is_some_and(|max| self.group_count + created >= max) => {
                    item.outcome = Outcome::OverQuota;
                }
                None => {
                    created += 1;
                    state.insert(group.clone(), (0, new_epoch()));
                }
            }
        }
        let mut advanced: HashMap<GroupName, (u64, String)> = HashMap::new();
        // Per group: text bytes added, and the first number given out.
        let mut added: HashMap<GroupName, (u64, u64)> = HashMap::new();
        let transaction = self.connection.transaction()?;
        {
            // A removed message's id: retention took its row, not what its
            // id promises (one lookup in a table that is small or empty).
            let mut removed =
                transaction.prepare_cached("SELECT seq, digest FROM removed_ids WHERE grp = ?1 AND id = ?2")?;
            // A retained message's id is found by the insert itself (the
            // unique index it updates anyway); its row is read only then.
            // Looking first cost one more index search per new message.
            let mut insert = transaction.prepare_cached(
                "INSERT INTO messages (grp, seq, id, client_id, name, text, ts, verified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (grp, id) DO NOTHING",
            )?;
            let mut retained =
                transaction.prepare_cached("SELECT seq, text FROM messages WHERE grp = ?1 AND id = ?2")?;
            for item in batch.iter_mut() {
                let Some((last, epoch)) = state.get_mut(&item.message.group) else { continue };
                let message = &mut item.message;
                item.epoch.clone_from(epoch);
                let key = params![message.group.as_str(), message.id.0.as_bytes()];
                let gone: Option<(i64, Vec<u8>)> =
                    removed.query_row(key, |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
                if let Some((seq, digest)) = gone {
                    let same = digest[..] == text_digest(&message.text)[..];
                    item.outcome = Outcome::repeated(same, seq as u64);
                    continue;
                }
                let seq = *last + 1;
                let inserted = insert.execute(params![
                    message.group.as_str(),
                    to_sql(seq),
                    message.id.0.as_bytes(),
                    message.from.client_id.0.as_bytes(),
                    message.from.name.as_ref().map(|name| name.as_str()),
                    message.text,
                    to_sql(message.ts),
                    message.from.verified,
                ])?;
                if inserted == 0 {
                    let (seq, text): (i64, String) = retained.query_row(key, |row| Ok((row.get(0)?, row.get(1)?)))?;
                    item.outcome = Outcome::repeated(text == message.text, seq as u64);
                    continue;
                }
                *last = seq;
                message.seq = seq;
                item.outcome = Outcome::New;
                advanced.insert(message.group.clone(), (*last, epoch.clone()));
                let entry = added.entry(message.group.clone()).or_insert((0, message.seq));
                entry.0 += message.text.len() as u64;
            }
            let mut save = transaction.prepare_cached(
                "INSERT INTO groups (name, last_seq, epoch, bytes, oldest) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, bytes = bytes + excluded.bytes",
            )?;
            for (group, (seq, epoch)) in &advanced {
                let (bytes, first) = added.get(group).copied().unwrap_or_default();
                save.execute(params![group.as_str(), to_sql(*seq), epoch, to_sql(bytes), to_sql(first)])?;
            }
        }
        transaction.commit()?;
        self.group_count += created;
        self.groups.extend(advanced);
        Ok(())
    }
}

impl Writer {
    /// Makes room at the size limit. History goes last: while ids of
    /// removed messages are kept (a busy group may hold far more of them
    /// than messages), the oldest of them go, at most 100,000 at a time
    /// (about 9 MB; deleting them took 0.9 s on this project's machine,
    /// with appends waiting); once fewer than 16 were left, a tenth of all
    /// messages (at least 16), without keeping their ids, and the groups
    /// left empty: taken first from the groups that appended the most
    /// bytes in the last hour, each losing its oldest (so that one flooder
    /// erases its own history, not every other room's), and only when
    /// nothing was appended for an hour, the oldest of all groups.
    fn evict_oldest(&mut self) -> Result<Evicted, HistoryError> {
        // No count first: on a day's ids that is a scan of millions of rows.
        let forgotten = self.connection.execute(
            "DELETE FROM removed_ids WHERE (grp, id) IN (SELECT grp, id FROM removed_ids ORDER BY ts LIMIT 100000)",
            [],
        )?;
        if forgotten >= 16 {
            return Ok(Evicted::Ids(forgotten as u64));
        }
        let count: i64 = self.connection.query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0))?;
        let share = (count / 10).max(16);
        if let Some(removed) = self.evict_heaviest(share)? {
            return Ok(Evicted::Messages(removed));
        }
        let cuts: Vec<(String, i64)> = {
            let mut statement = self.connection.prepare(
                "SELECT grp, MAX(seq) FROM (SELECT grp, seq FROM messages ORDER BY ts LIMIT ?1) GROUP BY grp",
            )?;
            let rows = statement.query_map([share], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut removed = 0;
        for (group, cut) in cuts {
            removed += self.cut(&group, cut as u64, None)?;
        }
        Ok(Evicted::Messages(removed))
    }

    /// Removes `share` messages, oldest first, from the groups that
    /// appended the most bytes in the last hour, the heaviest first; `None`
    /// when nothing was appended in the last hour. (A scan of the last
    /// hour's messages, by their time index: at the size limit only.)
    fn evict_heaviest(&mut self, share: i64) -> Result<Option<u64>, HistoryError> {
        let since = crate::clock::unix_millis().saturating_sub(HEAVY_WINDOW_MS);
        let heaviest: Vec<String> = {
            let mut statement = self.connection.prepare(
                "SELECT grp FROM messages WHERE ts >= ?1 GROUP BY grp
                 ORDER BY SUM(length(CAST(text AS BLOB))) DESC",
            )?;
            let rows = statement.query_map([to_sql(since)], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if heaviest.is_empty() {
            return Ok(None);
        }
        let (mut removed, mut left) = (0, share);
        for group in heaviest {
            if left <= 0 {
                break;
            }
            // Its `left`th oldest message, or all of it.
            let nth: Option<i64> = self
                .connection
                .query_row(
                    "SELECT seq FROM messages WHERE grp = ?1 ORDER BY seq LIMIT 1 OFFSET ?2",
                    params![group, left - 1],
                    |row| row.get(0),
                )
                .optional()?;
            let cut = match nth {
                Some(seq) => seq,
                None => self
                    .connection
                    .query_row("SELECT MAX(seq) FROM messages WHERE grp = ?1", [&group], |row| {
                        row.get::<_, Option<i64>>(0)
                    })?
                    .unwrap_or(0),
            };
            let cut_here = self.cut(&group, cut as u64, None)?;
            removed += cut_here;
            left -= cut_here as i64;
        }
        Ok(Some(removed))
    }

    /// Removes `group`'s messages numbered up to `cut`, in one transaction,
    /// keeping the group's byte total and oldest number true, and the ids of
    /// those stored at or after `keep_ids_since` (ms); a group left empty is
    /// removed with its ids (a later message creates it again, in a new
    /// epoch).
    fn cut(&mut self, group: &str, cut: u64, keep_ids_since: Option<u64>) -> Result<u64, HistoryError> {
        let transaction = self.connection.transaction()?;
        if let Some(since) = keep_ids_since {
            // Noted in a temporary table first (outside the size limit) and
            // written once the messages' pages are free: retention still
            // runs in a database at its limit.
            transaction.execute("DELETE FROM temp.cut_ids", [])?;
            transaction.execute(
                "INSERT INTO temp.cut_ids SELECT grp, id, seq, ts, text_digest(text)
                 FROM messages WHERE grp = ?1 AND seq <= ?2 AND ts >= ?3",
                params![group, to_sql(cut), to_sql(since)],
            )?;
        }
        let (count, bytes): (i64, i64) = transaction.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(CAST(text AS BLOB))), 0) FROM messages WHERE grp = ?1 AND seq <= ?2",
            params![group, to_sql(cut)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        transaction.execute("DELETE FROM messages WHERE grp = ?1 AND seq <= ?2", params![group, to_sql(cut)])?;
        transaction.execute(
            "UPDATE groups SET bytes = MAX(bytes - ?2, 0), oldest = MAX(oldest, ?3) WHERE name = ?1",
            params![group, bytes, to_sql(cut + 1)],
        )?;
        let emptied = transaction.execute("DELETE FROM groups WHERE name = ?1 AND oldest > last_seq", [group])?;
        if emptied > 0 {
            transaction.execute("DELETE FROM removed_ids WHERE grp = ?1", [group])?;
        } else if keep_ids_since.is_some() {
            transaction
                .execute("INSERT OR REPLACE INTO removed_ids SELECT grp, id, seq, ts, digest FROM temp.cut_ids", [])?;
        }
        transaction.commit()?;
        if emptied > 0 {
            self.groups.retain(|name, _| name.as_str() != group);
            self.group_count = self.group_count.saturating_sub(1);
        }
        Ok(count as u64)
    }

    /// Where retention cuts `group` (numbers up to the result go), or 0.
    fn retention_cut(
        &self,
        group: &Candidate,
        retention: &Retention,
        cutoff: Option<u64>,
    ) -> Result<u64, HistoryError> {
        let mut cut = 0;
        if let Some(max) = retention.max_messages {
            cut = cut.max(group.last.saturating_sub(max));
        }
        if let Some(cutoff) = cutoff {
            let older: Option<i64> = self.connection.query_row(
                "SELECT MAX(seq) FROM messages WHERE grp = ?1 AND ts < ?2",
                params![group.name, to_sql(cutoff)],
                |row| row.get(0),
            )?;
            cut = cut.max(older.unwrap_or(0) as u64);
        }
        if let Some(max) = retention.max_bytes.filter(|max| group.bytes > *max) {
            // The newest messages stay while their text fits (the newest
            // always stays).
            let mut statement = self.connection.prepare_cached(
                "SELECT seq, length(CAST(text AS BLOB)) FROM messages WHERE grp = ?1 ORDER BY seq DESC",
            )?;
            let mut rows = statement.query([&group.name])?;
            let mut total = 0u64;
            let mut newest = true;
            while let Some(row) = rows.next()? {
                let (seq, size): (i64, i64) = (row.get(0)?, row.get(1)?);
                total += size as u64;
                if total > max && !newest {
                    cut = cut.max(seq as u64);
                    break;
                }
                newest = false;
            }
        }
        Ok(cut)
    }
}

/// The window of appends that picks whose history makes room first.
const HEAVY_WINDOW_MS: u64 = 3_600_000;

/// What [`Writer::evict_oldest`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evicted {
    /// Ids kept for deduplication, of messages already removed.
    Ids(u64),
    Messages(u64),
}

/// A group retention may have to prune.
struct Candidate {
    name: String,
    last: u64,
    oldest: u64,
    bytes: u64,
}

/// Whether `err` is SQLite's "database or disk is full".
fn is_full(err: &HistoryError) -> bool {
    let HistoryError::Database(err) = err else { return false };
    matches!(
        err.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(failure, _)) if failure.code == rusqlite::ErrorCode::DiskFull
    )
}

/// The default for `--max-database-bytes`: the database's size now plus
/// four fifths of the free space of its file system, so that the database
/// reaches its limit (and makes room by itself) before the disk is full,
/// leaving room for its write-ahead log. `None` if that cannot be read.
pub fn default_max_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    owner_only::create_dir(dir).ok()?;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes the struct given, from a NUL-terminated path.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    // Both are u64 on Linux.
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    let size = std::fs::metadata(path).map_or(0, |metadata| metadata.len());
    Some(size + free / 5 * 4)
}

impl Store for SqliteStore {
    fn revoke(&self, sub: ClientId, min_iat: u64) -> Result<(), HistoryError> {
        self.writer().connection.execute(
            "INSERT INTO revocations (sub, min_iat) VALUES (?1, ?2)
             ON CONFLICT (sub) DO UPDATE SET min_iat = max(min_iat, excluded.min_iat)",
            rusqlite::params![sub.0.as_bytes().as_slice(), min_iat as i64],
        )?;
        Ok(())
    }

    fn remove_idle_groups(
        &self,
        idle_since_ms: u64,
        occupied: &(dyn Fn(&GroupName) -> bool + Sync),
    ) -> Result<u64, HistoryError> {
        // The candidates from a snapshot; each one checked again under the
        // writer's lock, which appends take too, before it goes.
        const LAST_TS: &str = "SELECT ts FROM messages WHERE grp = ?1 ORDER BY seq DESC LIMIT 1";
        let candidates: Vec<String> = self.with_reader(|connection| {
            let mut statement = connection.prepare(
                "SELECT name FROM groups
                 WHERE COALESCE((SELECT ts FROM messages WHERE grp = groups.name ORDER BY seq DESC LIMIT 1), 0) < ?1",
            )?;
            let rows = statement.query_map([to_sql(idle_since_ms)], |row| row.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        let mut removed = 0;
        for name in candidates {
            let Ok(group) = name.parse::<GroupName>() else { continue };
            if occupied(&group) {
                continue;
            }
            let mut writer = self.writer();
            let last_ts: Option<i64> = writer.connection.query_row(LAST_TS, [&name], |row| row.get(0)).optional()?;
            if last_ts.is_some_and(|ts| ts as u64 >= idle_since_ms) {
                continue;
            }
            let last_seq: i64 =
                writer
                    .connection
                    .query_row("SELECT last_seq FROM groups WHERE name = ?1", [&name], |row| row.get(0))?;
            // Cut whole: the group is emptied, so removed with its ids (and
            // a row left with no message at all goes too).
            writer.cut(&name, last_seq as u64, None)?;
            if writer.connection.execute("DELETE FROM groups WHERE name = ?1", [&name])? > 0 {
                writer.connection.execute("DELETE FROM removed_ids WHERE grp = ?1", [&name])?;
                writer.groups.retain(|cached, _| cached.as_str() != name);
                writer.group_count = writer.group_count.saturating_sub(1);
            }
            removed += 1;
        }
        Ok(removed)
    }

    fn revocations(&self) -> Result<Vec<(ClientId, u64)>, HistoryError> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare("SELECT sub, min_iat FROM revocations")?;
            let rows = statement.query_map([], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?)))?;
            let mut revocations = Vec::new();
            for row in rows {
                let (sub, min_iat) = row?;
                let sub = uuid::Uuid::from_slice(&sub)
                    .map_err(|_| HistoryError::Corrupt("a revoked sub is not a UUID".into()))?;
                revocations.push((ClientId(sub), u64::try_from(min_iat).unwrap_or(0)));
            }
            Ok(revocations)
        })
    }

    fn ban(&self, ban: &Ban) -> Result<(), HistoryError> {
        let json = serde_json::to_string(ban).expect("a ban is plain JSON");
        self.writer().connection.execute(
            "INSERT OR REPLACE INTO bans (id, until_ms, ban) VALUES (?1, ?2, ?3)",
            rusqlite::params![ban.id.as_bytes().as_slice(), to_sql(ban.until_ms), json],
        )?;
        Ok(())
    }

    fn lift(&self, id: Uuid) -> Result<bool, HistoryError> {
        let removed = self.writer().connection.execute("DELETE FROM bans WHERE id = ?1", [id.as_bytes().as_slice()])?;
        Ok(removed > 0)
    }

    fn bans(&self, now_ms: u64) -> Result<Vec<Ban>, HistoryError> {
        self.writer().connection.execute("DELETE FROM bans WHERE until_ms <= ?1", [to_sql(now_ms)])?;
        self.with_reader(|connection| {
            let mut statement = connection.prepare("SELECT ban FROM bans WHERE until_ms > ?1")?;
            let rows = statement.query_map([to_sql(now_ms)], |row| row.get::<_, String>(0))?;
            let mut bans = Vec::new();
            for row in rows {
                bans.push(serde_json::from_str(&row?).map_err(|_| HistoryError::Corrupt("a stored ban".into()))?);
            }
            Ok(bans)
        })
    }

    /// One transaction for the batch, on the writer (the sequencer's
    /// appends wait for it: a batch is a few rows).
    fn set_cursors(&self, writes: &[CursorWrite], now_ms: u64) -> Result<Vec<Cursor>, HistoryError> {
        let mut writer = self.writer();
        let transaction = writer.connection.transaction()?;
        let mut now = Vec::with_capacity(writes.len());
        {
            // SET reads the row as it was: a lower number of the same epoch
            // leaves it, another epoch replaces it, no epoch (an
            // invitation) leaves any.
            let mut set = transaction.prepare_cached(
                "INSERT INTO cursors (sub, grp, epoch, seq, updated) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (sub, grp) DO UPDATE SET
                     seq = CASE WHEN excluded.epoch = '' THEN seq
                                WHEN epoch = excluded.epoch THEN max(seq, excluded.seq)
                                ELSE excluded.seq END,
                     epoch = CASE WHEN excluded.epoch = '' THEN epoch ELSE excluded.epoch END,
                     updated = max(updated, excluded.updated)
                 RETURNING epoch, seq",
            )?;
            let mut count = transaction.prepare_cached("SELECT COUNT(*) FROM cursors WHERE sub = ?1")?;
            let mut trim = transaction.prepare_cached(
                "DELETE FROM cursors WHERE sub = ?1 AND grp NOT IN
                     (SELECT grp FROM cursors WHERE sub = ?1 ORDER BY updated DESC, grp DESC LIMIT ?2)",
            )?;
            for write in writes {
                let sub = write.sub.0.as_bytes().as_slice();
                let cursor = &write.cursor;
                let (epoch, seq): (String, i64) = set.query_row(
                    params![sub, write.group.as_str(), cursor.epoch, to_sql(cursor.seq), to_sql(now_ms)],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                let held: i64 = count.query_row([sub], |row| row.get(0))?;
                if held as usize > CURSORS_PER_IDENTITY {
                    trim.execute(params![sub, CURSORS_PER_IDENTITY as i64])?;
                }
                now.push(Cursor { epoch, seq: seq as u64 });
            }
        }
        transaction.commit()?;
        Ok(now)
    }

    fn cursor(&self, sub: ClientId, group: &GroupName) -> Result<Option<Cursor>, HistoryError> {
        self.with_reader(|connection| {
            let found: Option<(String, i64)> = connection
                .query_row(
                    "SELECT epoch, seq FROM cursors WHERE sub = ?1 AND grp = ?2",
                    params![sub.0.as_bytes().as_slice(), group.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            Ok(found.map(|(epoch, seq)| Cursor { epoch, seq: seq as u64 }))
        })
    }

    fn cursors(&self, sub: ClientId) -> Result<Vec<CursorEntry>, HistoryError> {
        self.with_reader(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT grp, epoch, seq, updated FROM cursors WHERE sub = ?1 ORDER BY updated DESC, grp DESC",
            )?;
            let rows = statement.query_map([sub.0.as_bytes().as_slice()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(3)?))
            })?;
            let mut listed = Vec::new();
            for row in rows {
                let (group, epoch, seq, updated) = row?;
                let group =
                    group.parse().map_err(|_| HistoryError::Corrupt(format!("bad group {group:?} in cursors")))?;
                listed.push(CursorEntry {
                    group,
                    cursor: Cursor { epoch, seq: seq as u64 },
                    updated_ms: updated as u64,
                });
            }
            Ok(listed)
        })
    }

    fn forget(&self, sub: ClientId, group: &GroupName) -> Result<bool, HistoryError> {
        let removed = self.writer().connection.execute(
            "DELETE FROM cursors WHERE sub = ?1 AND grp = ?2",
            params![sub.0.as_bytes().as_slice(), group.as_str()],
        )?;
        Ok(removed > 0)
    }

    /// At most `limit + 1` rows of the index by group: one more than
    /// `limit` says the group is too large.
    fn readers(&self, group: &GroupName, limit: usize) -> Result<Option<Vec<(ClientId, Cursor)>>, HistoryError> {
        self.with_reader(|connection| {
            let mut statement =
                connection.prepare_cached("SELECT sub, epoch, seq FROM cursors WHERE grp = ?1 LIMIT ?2")?;
            let rows = statement
                .query_map(params![group.as_str(), to_sql((limit as u64).saturating_add(1))], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
                })?;
            let mut readers = Vec::new();
            for row in rows {
                let (sub, epoch, seq) = row?;
                let sub = uuid::Uuid::from_slice(&sub)
                    .map_err(|_| HistoryError::Corrupt("a cursor's sub is not a UUID".into()))?;
                readers.push((ClientId(sub), Cursor { epoch, seq: seq as u64 }));
            }
            Ok((readers.len() <= limit).then_some(readers))
        })
    }

    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
        let mut writer = self.writer();
        let result = writer.append(batch, self.max_groups);
        self.writable.store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
        if let Err(err) = &result {
            writer.groups.clear();
            for item in batch.iter_mut() {
                item.outcome = Outcome::Pending;
            }
            // At the size limit this batch is refused (its senders retry),
            // and the oldest messages of all groups make room for the retry,
            // so that publishing resumes by itself whatever the retention.
            if self.limited && is_full(err) {
                match writer.evict_oldest() {
                    Ok(Evicted::Ids(forgotten)) => tracing::warn!(
                        forgotten,
                        "the database is at --max-database-bytes: forgot the oldest ids of removed messages"
                    ),
                    Ok(Evicted::Messages(removed)) => {
                        tracing::warn!(removed, "the database is at --max-database-bytes: removed its oldest messages")
                    }
                    Err(err) => {
                        tracing::error!(%err, "the database is full and its oldest messages could not be removed")
                    }
                }
            }
        }
        result
    }

    fn ready(&self) -> bool {
        self.writable.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn read(&self, group: &GroupName, range: Range, limit: Limit) -> Result<Slice, HistoryError> {
        self.with_reader(|connection| {
            // One read transaction: one snapshot of the WAL for the head and
            // the rows alike.
            let transaction = connection.transaction()?;
            let stored: Option<(i64, String)> = transaction
                .query_row("SELECT last_seq, epoch FROM groups WHERE name = ?1", [group.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let Some((last, epoch)) = stored else { return Ok(Slice::default()) };
            let oldest: Option<i64> =
                transaction
                    .query_row("SELECT MIN(seq) FROM messages WHERE grp = ?1", [group.as_str()], |row| row.get(0))?;
            let head = Head { epoch, oldest: oldest.map(|seq| seq as u64), last: last as u64, base: 0 };
            if limit.messages == 0 {
                return Ok(Slice { head, messages: Vec::new() });
            }
            let (sql, bound) = match range {
                Range::After(after) => ("seq > ?2 ORDER BY seq", after),
                Range::Before(before) => ("seq < ?2 ORDER BY seq DESC", before),
            };
            let sql = format!("SELECT {COLUMNS} FROM messages WHERE grp = ?1 AND {sql} LIMIT ?3");
            let mut statement = transaction.prepare_cached(&sql)?;
            let rows = statement
                .query_map(params![group.as_str(), to_sql(bound), to_sql(limit.messages as u64)], row_to_message)?
                .map(|row| row?);
            let mut messages = take_within(rows, limit)?;
            if matches!(range, Range::Before(_)) {
                messages.reverse();
            }
            Ok(Slice { head, messages })
        })
    }

    /// Forgets the removed ids past the dedup window, then finds the groups
    /// to prune from the groups table (and, for age, the time index), and
    /// prunes each in a transaction of its own, taking the writer for one
    /// group (or one batch of ids) at a time: appends go on in between,
    /// however large the database.
    fn prune(&self, retention: &Retention, now_ms: u64) -> Result<u64, HistoryError> {
        let cutoff = retention.max_age.map(|age| now_ms.saturating_sub(age.as_millis() as u64));
        let recognized_since = now_ms.saturating_sub(DEDUP_WINDOW.as_millis() as u64);
        loop {
            // Small batches: the writer is free for appends in between.
            let forgotten = self.writer().connection.execute(
                "DELETE FROM removed_ids WHERE (grp, id) IN
                     (SELECT grp, id FROM removed_ids WHERE ts < ?1 LIMIT 1000)",
                [to_sql(recognized_since)],
            )?;
            if forgotten == 0 {
                break;
            }
            std::thread::yield_now();
        }
        let candidates: Vec<Candidate> = {
            let writer = self.writer();
            let mut statement = writer.connection.prepare(
                "SELECT name, last_seq, oldest, bytes FROM groups
                 WHERE (?1 >= 0 AND last_seq - oldest + 1 > ?1) OR (?2 >= 0 AND bytes > ?2)
                    OR name IN (SELECT DISTINCT grp FROM messages WHERE ts < ?3)",
            )?;
            let rows = statement.query_map(
                // -1: no such limit.
                params![
                    retention.max_messages.map_or(-1, to_sql),
                    retention.max_bytes.map_or(-1, to_sql),
                    to_sql(cutoff.unwrap_or(0))
                ],
                |row| {
                    Ok(Candidate {
                        name: row.get(0)?,
                        last: row.get::<_, i64>(1)? as u64,
                        oldest: row.get::<_, i64>(2)? as u64,
                        bytes: row.get::<_, i64>(3)? as u64,
                    })
                },
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut removed = 0;
        for candidate in candidates {
            let mut writer = self.writer();
            let cut = writer.retention_cut(&candidate, retention, cutoff)?;
            if cut >= candidate.oldest {
                removed += writer.cut(&candidate.name, cut, Some(recognized_since))?;
            }
        }
        Ok(removed)
    }
}

impl From<rusqlite::Error> for HistoryError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Database(Box::new(err))
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
            // A name as given when it was stored, not as one chosen now.
            name: name.map(DisplayName::try_from).transpose().map_err(|_| corrupt("name"))?,
            verified,
        },
        text,
        ts: ts as u64,
        group: group.parse().map_err(|_| corrupt("group"))?,
    })
}
