//! Signals over Redis: a control is `PUBLISH`ed on [`CHANNEL`] and heard by
//! a subscription every node keeps on a connection (and a thread) of its
//! own; the live nodes are a sorted set, [`NODES`], scored by each node's
//! expiry on Redis's own clock (nodes' clocks may differ).
//!
//! Pub/sub keeps nothing for a subscriber that is away: after a lost
//! subscription the node subscribes again and its handler hears
//! [`Signal::Listening`], so it reads again what is stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Client, Connection, RedisResult, Script};

use super::contract::{Control, Handler, NodeId, NotHandled, Signal, SignalError, Signals};
use crate::redis_commands::{connect, Commands};

/// The control channel.
pub const CHANNEL: &str = "rc:control";
/// The live nodes, scored by expiry (Unix milliseconds, Redis's clock).
pub const NODES: &str = "rc:nodes";

/// How long a read of the channel waits before the thread looks whether it
/// should stop.
const POLL: Duration = Duration::from_millis(50);
/// Pause between attempts to reach Redis again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Expired nodes out, then `node` in until `ttl` milliseconds from now.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
";
/// The nodes whose expiry is still ahead.
const LIVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
";

/// Why a subscription ended (it is made again).
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("catching up: {0}")]
    CatchingUp(NotHandled),
    #[error("a signal handler panicked")]
    Panicked,
}

/// One node's signals over Redis; its subscription ends on drop.
pub struct RedisSignals {
    /// Publishes and the list of nodes.
    commands: Commands,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisSignals")
    }
}

impl RedisSignals {
    /// Starts listening on the control channel of the Redis at `url` (in a
    /// thread, which reaches Redis when it can).
    pub fn open(url: &str, handler: Handler) -> Result<Self, SignalError> {
        // rediss:// runs on rustls with ring, as the store's connections.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::open(url).map_err(unavailable)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (listener, stopped) = (client.clone(), stop.clone());
        std::thread::Builder::new()
            .name("roomcast-signals".into())
            .spawn(move || run(&listener, &handler, &stopped))
            .map_err(|err| SignalError::Unavailable(Box::new(err)))?;
        Ok(Self { commands: Commands::new(client), stop })
    }

    fn command<T>(&self, command: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T, SignalError> {
        self.commands.run(command).map_err(unavailable)
    }
}

impl Drop for RedisSignals {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Signals for RedisSignals {
    fn broadcast(&self, control: &Control) -> Result<(), SignalError> {
        let payload = serde_json::to_string(control).map_err(|err| SignalError::Unavailable(Box::new(err)))?;
        self.command(|connection| redis::cmd("PUBLISH").arg(CHANNEL).arg(&payload).query::<u64>(connection))?;
        Ok(())
    }

    fn refresh(&self, node: NodeId, ttl: Duration) -> Result<(), SignalError> {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let script = Script::new(REFRESH);
        self.command(|connection| script.key(NODES).arg(node.to_string()).arg(ttl).invoke::<i64>(connection))?;
        Ok(())
    }

    fn leave(&self, node: NodeId) -> Result<(), SignalError> {
        self.command(|connection| redis::cmd("ZREM").arg(NODES).arg(node.to_string()).query::<i64>(connection))?;
        Ok(())
    }

    fn live_nodes(&self) -> Result<Vec<NodeId>, SignalError> {
        let script = Script::new(LIVE);
        let names: Vec<String> = self.command(|connection| script.key(NODES).invoke(connection))?;
        // Another program's members of the set are not nodes.
        let mut live: Vec<NodeId> = names.iter().filter_map(|name| name.parse().ok()).collect();
        live.sort();
        Ok(live)
    }
}

fn unavailable(err: redis::RedisError) -> SignalError {
    SignalError::Unavailable(Box::new(err))
}

/// The subscription thread: listens until `stop`, subscribing again after
/// every loss.
fn run(client: &Client, handler: &Handler, stop: &AtomicBool) {
    // Said once per outage, not at every attempt (five a second).
    let mut away = false;
    while !stop.load(Ordering::Relaxed) {
        // A handler that panics is a lost subscription too: the node
        // listens again and its handler reads again what it may have
        // missed, rather than the node going deaf.
        let listened =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listen(client, handler, stop, &mut away)));
        let failure = match listened {
            Ok(Ok(())) => continue,
            Ok(Err(lost)) => lost,
            Err(_) => Lost::Panicked,
        };
        if !std::mem::replace(&mut away, true) {
            tracing::warn!(%failure, "control channel lost; listening again as soon as Redis answers");
        }
        std::thread::sleep(RETRY_AFTER);
    }
}

/// One subscription, until it fails or `stop`.
fn listen(client: &Client, handler: &Handler, stop: &AtomicBool, away: &mut bool) -> Result<(), Lost> {
    let mut connection = connect(client)?;
    let mut pubsub = connection.as_pubsub();
    // Answered once Redis has taken it: from here on nothing is missed.
    pubsub.subscribe(CHANNEL)?;
    handler(Signal::Listening).map_err(Lost::CatchingUp)?;
    if std::mem::take(away) {
        tracing::info!("control channel listening again");
    }
    pubsub.set_read_timeout(Some(POLL))?;
    while !stop.load(Ordering::Relaxed) {
        let message = match pubsub.get_message() {
            Ok(message) => message,
            Err(err) if err.is_timeout() => continue,
            Err(err) => return Err(err.into()),
        };
        match serde_json::from_slice::<Control>(message.get_payload_bytes()) {
            Ok(control) => {
                if let Err(err) = handler(Signal::Control(control)) {
                    tracing::warn!(%err, "a signal handler failed");
                }
            }
            // A newer node's control this one does not know: its own state
            // is not touched by it.
            Err(err) => tracing::warn!(%err, "an unknown control on the control channel; ignored"),
        }
    }
    Ok(())
}
