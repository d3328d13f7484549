//! [`RedisStore`], the [`Store`] on Redis: its keys, its scripts, and the
//! writer connection whose answers say whether the node is ready.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::{Connection, Script, Value};
use roomcast_shared::{ChatMessage, ClientId, GroupName};
use uuid::Uuid;

use crate::ban::Ban;
use crate::history::store::{
    new_epoch, take_within, text_digest, Appending, Cursor, CursorEntry, CursorWrite, Head, HistoryError, Limit,
    Outcome, Range, Retention, Slice, Store, CURSORS_PER_IDENTITY, DEDUP_WINDOW,
};
use crate::locks::lock;

/// How long a connection attempt and each command may take: past it, the
/// store counts as unreachable (sends get `unavailable`, sockets `503`).
const TIMEOUT: Duration = Duration::from_secs(2);

/// The channel a group's messages are announced on.
pub fn channel_of(group: &GroupName) -> String {
    Keys::of(group).channel
}

/// What a Redis store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedisOptions {
    pub max_groups: Option<u64>,
    pub max_messages: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl RedisOptions {
    pub fn new(retention: &Retention, max_groups: Option<u64>) -> Self {
        Self { max_groups, max_messages: retention.max_messages, max_bytes: retention.max_bytes }
    }
}

pub struct RedisStore {
    client: redis::Client,
    options: RedisOptions,
    publish: Script,
    read: Script,
    went_back: Script,
    cursor: Script,
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// The last epoch and number this node saw per group, to notice a store
    /// that went back.
    seen: Mutex<HashMap<GroupName, (String, u64)>>,
    /// The writer connection answered (a `PING` or a batch) since it was
    /// last found broken.
    writer_ok: AtomicBool,
    /// The subscriber listens to every group this node has members in.
    subscribed: AtomicBool,
}

/// A connection found broken (or without the scripts): made again.
#[derive(Debug)]
struct Broken(HistoryError);

impl From<redis::RedisError> for HistoryError {
    fn from(err: redis::RedisError) -> Self {
        Self::Database(Box::new(err))
    }
}

struct Keys {
    epoch: String,
    seq: String,
    log: String,
    bytes: String,
    ids: String,
    base: String,
    channel: String,
}

impl Keys {
    fn of(group: &GroupName) -> Self {
        let tag = format!("rc:{{{group}}}");
        Self {
            epoch: format!("{tag}:epoch"),
            seq: format!("{tag}:seq"),
            log: format!("{tag}:log"),
            bytes: format!("{tag}:bytes"),
            ids: format!("{tag}:ids"),
            base: format!("{tag}:base"),
            channel: format!("{tag}:pub"),
        }
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host:port[/db]`).
    /// Connects once to check the URL, and says what Redis's configuration
    /// means for durability.
    pub fn open(url: &str, options: RedisOptions) -> Result<Self, HistoryError> {
        // rediss:// runs on rustls with ring (the only provider built in);
        // installed once per process, a second time is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url)?;
        let store = Self {
            client,
            options,
            publish: Script::new(include_str!("publish.lua")),
            read: Script::new(include_str!("read.lua")),
            went_back: Script::new(include_str!("went_back.lua")),
            cursor: Script::new(include_str!("cursor.lua")),
            writer: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            writer_ok: AtomicBool::new(false),
            // Nobody is here yet: nothing to listen to.
            subscribed: AtomicBool::new(true),
        };
        let mut connection = store.connect()?;
        check_version(&mut connection)?;
        check_configuration(&mut connection);
        store.readers_pool().push(connection);
        store.check_health();
        Ok(store)
    }

    /// The client, for the subscriber's own connection.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A new connection with the scripts loaded and timeouts set.
    fn connect(&self) -> Result<Connection, HistoryError> {
        let mut connection = self.client.get_connection_with_timeout(TIMEOUT)?;
        connection.set_read_timeout(Some(TIMEOUT))?;
        connection.set_write_timeout(Some(TIMEOUT))?;
        self.publish.load(&mut connection)?;
        self.read.load(&mut connection)?;
        self.went_back.load(&mut connection)?;
        self.cursor.load(&mut connection)?;
        Ok(connection)
    }

    fn readers_pool(&self) -> MutexGuard<'_, Vec<Connection>> {
        lock(&self.readers)
    }

    /// Runs `use_it` on a pooled connection, or on a new one when there is
    /// none or the pooled one turns out broken (Redis restarted since it
    /// was last used); a connection that failed is dropped.
    fn with_reader<T>(&self, use_it: impl Fn(&mut Connection) -> redis::RedisResult<T>) -> Result<T, HistoryError> {
        let pooled = self.readers_pool().pop();
        if let Some(mut connection) = pooled {
            match use_it(&mut connection) {
                Ok(value) => {
                    self.readers_pool().push(connection);
                    return Ok(value);
                }
                Err(err) if !is_broken(&err) => {
                    self.readers_pool().push(connection);
                    return Err(err.into());
                }
                Err(_) => {} // stale: try a new connection
            }
        }
        let mut connection = self.connect()?;
        let value = use_it(&mut connection)?;
        self.readers_pool().push(connection);
        Ok(value)
    }

    /// Checks the connection that appends, making it again if it is gone
    /// or broken: a node is ready only once the writer answered since
    /// Redis came back (not a probe on another connection), so that its
    /// first send after `/readyz` says 200 is stored. Run by the
    /// subscriber twice a second, and right after it subscribed again.
    pub fn check_health(&self) -> bool {
        let mut writer = self.writer();
        for _ in 0..2 {
            if writer.is_none() {
                match self.connect() {
                    Ok(connection) => *writer = Some(connection),
                    Err(_) => break,
                }
            }
            let connection = writer.as_mut().expect("connected above");
            if redis::cmd("PING").query::<String>(connection).is_ok() {
                self.writer_ok.store(true, Ordering::Relaxed);
                return true;
            }
            *writer = None; // broken: the next round makes a new one
        }
        self.writer_ok.store(false, Ordering::Relaxed);
        false
    }

    /// The subscriber says whether it listens to every group this node
    /// has members in (readiness needs it: a node that cannot hear its
    /// groups would ack sends whose deliveries never come).
    pub fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Relaxed);
    }

    /// Notes that a node delivered `seq` of `group`'s `epoch`: a store that
    /// later holds less went back.
    pub fn observe(&self, group: &GroupName, epoch: &str, seq: u64) {
        let mut seen = lock(&self.seen);
        match seen.get_mut(group) {
            Some((known, last)) if known == epoch => *last = (*last).max(seq),
            _ => {
                seen.insert(group.clone(), (epoch.to_owned(), seq));
            }
        }
    }

    /// `group` holds less than `seen` of `epoch`: starts a new epoch above
    /// it (once, whichever node notices first).
    pub fn went_back(&self, group: &GroupName, epoch: &str, seen: u64) -> Result<bool, HistoryError> {
        let keys = Keys::of(group);
        let started: i64 = self.with_reader(|connection| {
            self.went_back
                .key(&keys.epoch)
                .key(&keys.seq)
                .key(&keys.base)
                .arg(epoch)
                .arg(seen)
                .arg(new_epoch())
                .invoke(connection)
        })?;
        if started == 1 {
            tracing::warn!(%group, seen, "the Redis history went back; a new epoch starts above what was seen");
        }
        Ok(started == 1)
    }

    /// The heads (epoch, last number, base) of `groups`, in one round trip.
    pub fn heads(&self, groups: &[GroupName]) -> Result<Vec<Head>, HistoryError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        self.with_reader(|connection| {
            let mut pipe = redis::pipe();
            for group in groups {
                let keys = Keys::of(group);
                pipe.cmd("MGET").arg(&keys.epoch).arg(&keys.seq).arg(&keys.base);
            }
            let heads: Vec<(Option<String>, Option<u64>, Option<u64>)> = pipe.query(connection)?;
            Ok(heads
                .into_iter()
                .map(|(epoch, last, base)| Head {
                    epoch: epoch.unwrap_or_default(),
                    oldest: None,
                    last: last.unwrap_or(0),
                    base: base.unwrap_or(0),
                })
                .collect())
        })
    }

    fn publish_command(&self, item: &Appending, seen: &HashMap<GroupName, (String, u64)>) -> redis::Cmd {
        let message = &item.message;
        let keys = Keys::of(&message.group);
        let id = message.id.0.to_string();
        // Numbered by the script: stored with 0, read back with the entry id.
        let json = serde_json::to_string(&ChatMessage { seq: 0, ..message.clone() }).unwrap_or_default();
        let (seen_epoch, seen_last) = seen.get(&message.group).cloned().unwrap_or_default();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.publish.get_hash()).arg(8);
        cmd.arg(&keys.epoch).arg(&keys.seq).arg(&keys.log).arg(&keys.bytes).arg(&keys.ids);
        cmd.arg(format!("rc:{{{}}}:old:{id}", message.group)).arg("rc:groups").arg(&keys.base);
        cmd.arg(message.group.as_str()).arg(&id).arg(json).arg(message.text.len()).arg(message.ts);
        cmd.arg(self.options.max_messages.unwrap_or(0)).arg(self.options.max_bytes.unwrap_or(0));
        cmd.arg(self.options.max_groups.unwrap_or(0)).arg(DEDUP_WINDOW.as_millis() as u64).arg(new_epoch());
        cmd.arg(seen_epoch).arg(seen_last).arg(&keys.channel);
        cmd.arg(crate::hex::hex(&text_digest(&message.text)));
        cmd
    }

    /// One attempt at `batch` on the writer connection (made first if
    /// there is none). Items Redis refused are left `Pending`; a connection
    /// that failed, or a script Redis no longer has, is [`Broken`].
    fn append_once(&self, writer: &mut Option<Connection>, batch: &mut [Appending]) -> Result<(), Broken> {
        if writer.is_none() {
            *writer = Some(self.connect().map_err(Broken)?);
        }
        let connection = writer.as_mut().expect("connected above");
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        {
            // Not held across the round trip: the subscriber notes what it
            // delivers meanwhile.
            let seen = lock(&self.seen);
            for item in batch.iter() {
                pipe.add_command(self.publish_command(item, &seen));
            }
        }
        // Whatever was sent may or may not be stored: a resend with the
        // same id is stored once either way.
        let results: Vec<redis::RedisResult<Value>> = pipe.query(connection).map_err(|err| Broken(err.into()))?;
        let mut seen = lock(&self.seen);
        let mut refused = None;
        for (item, result) in batch.iter_mut().zip(results) {
            match result.map(|value| parse_published(&value)) {
                Ok(Some(Published::New(seq, epoch))) => {
                    item.message.seq = seq;
                    item.outcome = Outcome::New;
                    seen.insert(item.message.group.clone(), (epoch.clone(), seq));
                    item.epoch = epoch;
                }
                Ok(Some(Published::Duplicate { seq, epoch, same_text })) => {
                    item.outcome = Outcome::repeated(same_text, seq);
                    item.epoch = epoch;
                }
                Ok(Some(Published::OverQuota)) => item.outcome = Outcome::OverQuota,
                Ok(None) => item.outcome = Outcome::Pending,
                Err(err) => {
                    item.outcome = Outcome::Pending;
                    refused.get_or_insert(err);
                }
            }
        }
        drop(seen);
        match refused {
            // Scripts flushed (a restarted Redis): a new connection loads
            // them again.
            Some(err) if is_no_script(&err) => Err(Broken(err.into())),
            // Another refusal (out of memory, a read-only replica) leaves
            // the node unable to write: it says so (`/readyz`, new
            // sockets), and the next batch starts on a new connection. The
            // senders retry; dedup keeps it once.
            Some(err) => {
                tracing::error!(%err, "Redis refused to store messages");
                *writer = None;
                self.writer_ok.store(false, Ordering::Relaxed);
                Ok(())
            }
            None => {
                self.writer_ok.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn writer(&self) -> MutexGuard<'_, Option<Connection>> {
        lock(&self.writer)
    }
}

impl RedisStore {
    /// Removes from `rc:groups` the groups whose epoch key is gone, a batch
    /// of names at a time; returns how many.
    fn forget_vanished_groups(&self) -> Result<u64, HistoryError> {
        let mut cursor = 0u64;
        let mut forgotten = 0;
        loop {
            let (next, names): (u64, Vec<String>) = self.with_reader(|connection| {
                redis::cmd("SSCAN").arg("rc:groups").arg(cursor).arg("COUNT").arg(1000).query(connection)
            })?;
            // Checked and removed in one step: a group created meanwhile
            // (its epoch set and its name added by the publish script)
            // keeps its place.
            const FORGET: &str = "local n = 0 for _, name in ipairs(ARGV) do \
                if redis.call('EXISTS', 'rc:{' .. name .. '}:epoch') == 0 then \
                n = n + redis.call('SREM', KEYS[1], name) end end return n";
            if !names.is_empty() {
                forgotten += self.with_reader(|connection| {
                    redis::cmd("EVAL").arg(FORGET).arg(1).arg("rc:groups").arg(&names).query::<u64>(connection)
                })?;
            }
            if next == 0 {
                return Ok(forgotten);
            }
            cursor = next;
        }
    }
}

/// Whether `err` means the connection is of no more use (it was lost,
/// timed out, or Redis restarted and no longer has the scripts).
fn is_broken(err: &redis::RedisError) -> bool {
    err.is_io_error() || err.is_timeout() || err.is_connection_dropped() || is_no_script(err)
}

/// Redis has no script of that hash (it restarted, or was told to flush
/// its scripts).
fn is_no_script(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// Redis 7.0 is the floor: the scripts' `#!lua` flags (an out-of-memory
/// Redis refuses them before they write) and exclusive stream ranges.
fn check_version(connection: &mut Connection) -> Result<(), HistoryError> {
    let info: String = redis::cmd("INFO").arg("server").query(connection)?;
    let version = info.lines().find_map(|line| line.strip_prefix("redis_version:")).unwrap_or("").trim().to_owned();
    let major: u32 = version.split('.').next().and_then(|major| major.parse().ok()).unwrap_or(0);
    if major < 7 {
        return Err(HistoryError::Corrupt(format!("Redis {version} is too old: Roomcast needs Redis 7.0 or later")));
    }
    Ok(())
}

/// Says once what the Redis configuration means for durability; managed
/// Redis may refuse `CONFIG GET`, which is said too.
fn check_configuration(connection: &mut Connection) {
    let get = |connection: &mut Connection, name: &str| -> redis::RedisResult<String> {
        let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(connection)?;
        Ok(pair.get(1).cloned().unwrap_or_default())
    };
    let (appendonly, fsync, policy) = match (
        get(connection, "appendonly"),
        get(connection, "appendfsync"),
        get(connection, "maxmemory-policy"),
    ) {
        (Ok(appendonly), Ok(fsync), Ok(policy)) => (appendonly, fsync, policy),
        _ => {
            tracing::warn!(
                "cannot read the Redis configuration (CONFIG GET refused); make sure AOF is on and maxmemory-policy is noeviction"
            );
            return;
        }
    };
    if appendonly != "yes" {
        tracing::warn!("Redis runs without AOF (appendonly no): acknowledged messages are lost if Redis restarts");
    } else {
        match fsync.as_str() {
            "always" => tracing::info!("Redis AOF with appendfsync always: an acknowledged message survives a power cut"),
            "everysec" => tracing::info!(
                "Redis AOF with appendfsync everysec: an acknowledged message survives a Redis crash; a power cut may lose the last second"
            ),
            other => tracing::warn!(
                appendfsync = other,
                "Redis AOF without a regular fsync: a power cut may lose acknowledged messages"
            ),
        }
    }
    if policy != "noeviction" {
        tracing::warn!(
            maxmemory_policy = %policy,
            "Redis may evict keys when full: history and sequence numbers could vanish; set maxmemory-policy noeviction"
        );
    }
}

/// The revocations of every node: `sub` → earliest `iat` accepted.
const REVOKED_KEY: &str = "rc:revoked";
/// Bans: a hash, id → the ban as JSON; those over are removed when read.
const BANS_KEY: &str = "rc:bans";

/// An identity's read cursors: a hash of group → `epoch:seq:updated`. Its
/// own hash tag (`{id:…}`: a group name holds no `:`, so no group's tag is
/// the same), as every group's keys have theirs.
fn cursors_key(sub: ClientId) -> String {
    format!("rc:{{id:{sub}}}:cursors")
}

/// Who has a cursor in `group`: a hash of identity → `epoch:seq`, in the
/// group's hash tag, kept beside each identity's own hash (written after
/// it, as separate commands: the two tags may live on different shards).
/// Its length bounds [`Store::readers`].
fn readers_key(group: &str) -> String {
    format!("rc:{{{group}}}:readers")
}

/// The readers of a group, unless it has more than ARGV[1]: one step.
const READERS: &str = "if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[1]) then return false end \
    return redis.call('HGETALL', KEYS[1])";

/// A stored `epoch:seq:updated`.
fn parse_cursor(value: &str) -> Option<(Cursor, u64)> {
    let mut parts = value.rsplitn(3, ':');
    let updated = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let epoch = parts.next()?.to_owned();
    Some((Cursor { epoch, seq }, updated))
}

impl Store for RedisStore {
    fn revoke(&self, sub: ClientId, min_iat: u64) -> Result<(), HistoryError> {
        // The later of the stored and the new value, in one step.
        const KEEP_LATER: &str = "local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') \
            if tonumber(ARGV[2]) > old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0";
        self.with_reader(|connection| {
            redis::cmd("EVAL")
                .arg(KEEP_LATER)
                .arg(1)
                .arg(REVOKED_KEY)
                .arg(sub.to_string())
                .arg(min_iat)
                .query::<i64>(connection)
        })?;
        Ok(())
    }

    /// Not in Redis mode (the configuration refuses `--group-idle-age`
    /// there: whether anyone is in a group is each node's to know).
    fn remove_idle_groups(
        &self,
        _idle_since_ms: u64,
        _occupied: &(dyn Fn(&GroupName) -> bool + Sync),
    ) -> Result<u64, HistoryError> {
        Ok(0)
    }

    fn revocations(&self) -> Result<Vec<(ClientId, u64)>, HistoryError> {
        let all: HashMap<String, u64> =
            self.with_reader(|connection| redis::cmd("HGETALL").arg(REVOKED_KEY).query(connection))?;
        all.into_iter()
            .map(|(sub, min_iat)| {
                let sub = sub.parse().map_err(|_| HistoryError::Corrupt("a revoked sub is not a UUID".into()))?;
                Ok((sub, min_iat))
            })
            .collect()
    }

    fn ban(&self, ban: &Ban) -> Result<(), HistoryError> {
        let json = serde_json::to_string(ban).expect("a ban is plain JSON");
        self.with_reader(|connection| {
            redis::cmd("HSET").arg(BANS_KEY).arg(ban.id.to_string()).arg(&json).query::<i64>(connection)
        })?;
        Ok(())
    }

    fn lift(&self, id: Uuid) -> Result<bool, HistoryError> {
        let removed: i64 =
            self.with_reader(|connection| redis::cmd("HDEL").arg(BANS_KEY).arg(id.to_string()).query(connection))?;
        Ok(removed > 0)
    }

    fn bans(&self, now_ms: u64) -> Result<Vec<Ban>, HistoryError> {
        let all: HashMap<String, String> =
            self.with_reader(|connection| redis::cmd("HGETALL").arg(BANS_KEY).query(connection))?;
        let mut bans = Vec::with_capacity(all.len());
        let mut over = Vec::new();
        for (id, json) in all {
            let ban: Ban = serde_json::from_str(&json).map_err(|_| HistoryError::Corrupt("a stored ban".into()))?;
            if ban.until_ms > now_ms {
                bans.push(ban);
            } else {
                over.push(id);
            }
        }
        if !over.is_empty() {
            self.with_reader(|connection| redis::cmd("HDEL").arg(BANS_KEY).arg(&over).query::<i64>(connection))?;
        }
        Ok(bans)
    }

    /// One pipeline of scripts, one round trip; each script is atomic.
    /// Then the groups' readers hashes, one more round trip: a cursor
    /// stored but not yet in its group's hash (a failure between the two)
    /// shows in "seen by" with the identity's next move.
    fn set_cursors(&self, writes: &[CursorWrite], now_ms: u64) -> Result<Vec<Cursor>, HistoryError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let set: Vec<(String, u64, String)> = self.with_reader(|connection| {
            let mut pipe = redis::pipe();
            for write in writes {
                pipe.cmd("EVALSHA").arg(self.cursor.get_hash()).arg(1).arg(cursors_key(write.sub));
                pipe.arg(write.group.as_str()).arg(&write.cursor.epoch).arg(write.cursor.seq).arg(now_ms);
                pipe.arg(CURSORS_PER_IDENTITY);
            }
            pipe.query(connection)
        })?;
        self.with_reader(|connection| {
            let mut pipe = redis::pipe();
            for (write, (epoch, seq, forgotten)) in writes.iter().zip(&set) {
                let sub = write.sub.to_string();
                pipe.cmd("HSET")
                    .arg(readers_key(write.group.as_str()))
                    .arg(&sub)
                    .arg(format!("{epoch}:{seq}"))
                    .ignore();
                if !forgotten.is_empty() {
                    pipe.cmd("HDEL").arg(readers_key(forgotten)).arg(&sub).ignore();
                }
            }
            pipe.query::<()>(connection)
        })?;
        Ok(set.into_iter().map(|(epoch, seq, _)| Cursor { epoch, seq }).collect())
    }

    fn cursor(&self, sub: ClientId, group: &GroupName) -> Result<Option<Cursor>, HistoryError> {
        let stored: Option<String> = self
            .with_reader(|connection| redis::cmd("HGET").arg(cursors_key(sub)).arg(group.as_str()).query(connection))?;
        stored
            .map(|value| parse_cursor(&value).map(|(cursor, _)| cursor).ok_or_else(|| corrupt_cursor(sub)))
            .transpose()
    }

    fn cursors(&self, sub: ClientId) -> Result<Vec<CursorEntry>, HistoryError> {
        let all: HashMap<String, String> =
            self.with_reader(|connection| redis::cmd("HGETALL").arg(cursors_key(sub)).query(connection))?;
        let mut listed = all
            .into_iter()
            .map(|(group, value)| {
                let group = group.parse().map_err(|_| corrupt_cursor(sub))?;
                let (cursor, updated_ms) = parse_cursor(&value).ok_or_else(|| corrupt_cursor(sub))?;
                Ok(CursorEntry { group, cursor, updated_ms })
            })
            .collect::<Result<Vec<_>, HistoryError>>()?;
        listed.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then_with(|| b.group.cmp(&a.group)));
        Ok(listed)
    }

    fn forget(&self, sub: ClientId, group: &GroupName) -> Result<bool, HistoryError> {
        let removed: u64 = self
            .with_reader(|connection| redis::cmd("HDEL").arg(cursors_key(sub)).arg(group.as_str()).query(connection))?;
        self.with_reader(|connection| {
            redis::cmd("HDEL").arg(readers_key(group.as_str())).arg(sub.to_string()).query::<u64>(connection)
        })?;
        Ok(removed > 0)
    }

    fn readers(&self, group: &GroupName, limit: usize) -> Result<Option<Vec<(ClientId, Cursor)>>, HistoryError> {
        let readers: Option<HashMap<String, String>> = self.with_reader(|connection| {
            redis::cmd("EVAL").arg(READERS).arg(1).arg(readers_key(group.as_str())).arg(limit).query(connection)
        })?;
        let corrupt = || HistoryError::Corrupt(format!("a reader of {group} in Redis is not sub -> epoch:seq"));
        readers
            .map(|readers| {
                readers
                    .into_iter()
                    .map(|(sub, value)| {
                        let sub = sub.parse().map_err(|_| corrupt())?;
                        let (epoch, seq) = value.rsplit_once(':').ok_or_else(corrupt)?;
                        Ok((sub, Cursor { epoch: epoch.to_owned(), seq: seq.parse().map_err(|_| corrupt())? }))
                    })
                    .collect()
            })
            .transpose()
    }

    fn append(&self, batch: &mut [Appending]) -> Result<(), HistoryError> {
        let mut writer = self.writer();
        // A connection found broken by this batch (Redis restarted, the
        // connection dropped, scripts flushed) is replaced and the batch
        // sent once more before anything is refused: appends are
        // idempotent by message id, so a batch half-stored the first time
        // is stored once.
        match self.append_once(&mut writer, batch) {
            Err(Broken(err)) => {
                tracing::info!(%err, "the Redis writer connection broke; sending the batch again on a new one");
                *writer = None;
                match self.append_once(&mut writer, batch) {
                    Ok(()) => Ok(()),
                    Err(Broken(err)) => {
                        *writer = None;
                        self.writer_ok.store(false, Ordering::Relaxed);
                        Err(err)
                    }
                }
            }
            Ok(()) => Ok(()),
        }
    }

    fn read(&self, group: &GroupName, range: Range, limit: Limit) -> Result<Slice, HistoryError> {
        let keys = Keys::of(group);
        let (direction, bound) = match range {
            Range::After(after) => ("after", after.to_string()),
            Range::Before(u64::MAX) => ("before", "max".to_owned()),
            Range::Before(before) => ("before", before.to_string()),
        };
        let value: Value = self.with_reader(|connection| {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(self.read.get_hash()).arg(4).arg(&keys.epoch).arg(&keys.seq).arg(&keys.log).arg(&keys.base);
            cmd.arg(direction).arg(&bound).arg(limit.messages).arg(limit.bytes as u64);
            cmd.query(connection)
        })?;
        let slice = parse_slice(group, value)?;
        let mut messages = take_within(slice.messages.into_iter().map(Ok::<_, HistoryError>), limit)?;
        if matches!(range, Range::Before(_)) {
            messages.reverse();
        }
        Ok(Slice { head: slice.head, messages })
    }

    fn prune(&self, _retention: &Retention, _now_ms: u64) -> Result<u64, HistoryError> {
        // Count and bytes are applied by the publish script; age is not
        // supported with Redis (the configuration refuses it). What is left
        // is `rc:groups`: a group whose epoch is gone (deleted by hand, or
        // evicted by a Redis not set to noeviction) gives its place under
        // `--max-groups` back.
        self.forget_vanished_groups()?;
        Ok(0)
    }

    fn ready(&self) -> bool {
        self.writer_ok.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }
}

enum Published {
    New(u64, String),
    Duplicate { seq: u64, epoch: String, same_text: bool },
    OverQuota,
}

fn parse_published(value: &Value) -> Option<Published> {
    let Value::Array(parts) = value else { return None };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    let number = |value: &Value| match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    match (parts.first().and_then(text).as_deref(), parts.get(1).and_then(number), parts.get(2).and_then(text)) {
        (Some("new"), Some(seq), Some(epoch)) => Some(Published::New(seq, epoch)),
        (Some("dup"), Some(seq), Some(epoch)) => {
            Some(Published::Duplicate { seq, epoch, same_text: parts.get(3).and_then(number) != Some(0) })
        }
        (Some("quota"), _, _) => Some(Published::OverQuota),
        _ => None,
    }
}

/// The read script's answer: the head and the entries, nearest to the
/// bound first.
fn parse_slice(group: &GroupName, value: Value) -> Result<Slice, HistoryError> {
    let corrupt = |what: &str| HistoryError::Corrupt(format!("Redis answered a read of {group} with {what}"));
    let Value::Array(parts) = value else { return Err(corrupt("something else than a list")) };
    if parts.is_empty() {
        return Ok(Slice::default());
    }
    let [epoch, last, oldest, entries, base]: [Value; 5] =
        parts.try_into().map_err(|_| corrupt("a list of the wrong length"))?;
    let base: u64 = redis::from_redis_value(base).map_err(|_| corrupt("a bad base"))?;
    let epoch: String = redis::from_redis_value(epoch).map_err(|_| corrupt("a bad epoch"))?;
    let last: u64 = redis::from_redis_value(last).map_err(|_| corrupt("a bad last number"))?;
    let oldest: u64 = redis::from_redis_value(oldest).map_err(|_| corrupt("a bad oldest number"))?;
    let entries: Vec<(String, String)> = redis::from_redis_value(entries).map_err(|_| corrupt("bad entries"))?;
    let messages = entries
        .into_iter()
        .map(|(id, json)| decode_entry(&id, &json).ok_or_else(|| corrupt("an entry that is not a message")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Slice { head: Head { epoch, oldest: (oldest > 0).then_some(oldest), last, base }, messages })
}

fn corrupt_cursor(sub: ClientId) -> HistoryError {
    HistoryError::Corrupt(format!("a read cursor of {sub} in Redis is not group -> epoch:seq:updated"))
}

/// A stream entry (`{seq}-0`, message JSON) as a message.
pub fn decode_entry(id: &str, json: &str) -> Option<ChatMessage> {
    let seq = id.split('-').next()?.parse().ok()?;
    let message: ChatMessage = serde_json::from_str(json).ok()?;
    Some(ChatMessage { seq, ..message })
}
