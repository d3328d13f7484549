//! Typing indicators: a JSON member's `typing` reaches its group's other
//! JSON members on every node, as `{"type":"typing","from":…}`. Never
//! stored, never numbered, best-effort throughout.
//!
//! Sending ([`Typing::announce`]): at most one per identity (client id) per
//! [`TYPING_EVERY_MS`] passes (the bucket is the identity's, so reconnecting
//! does not refill it); the rest are dropped without a word. What passes
//! goes as a [`Control::Typing`] into a bounded queue that one thread
//! drains into [`Signals::broadcast`], which may wait on Redis: the
//! connection loop never does. A full queue drops the newest.
//!
//! Hearing ([`Fanout::heard`]): every node, this one too, encodes the event
//! once and hands it to the group's live JSON members here but the typist's
//! own tabs ([`Registry::signal`], which never evicts).

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::limits::TYPING_EVERY_MS;
use roomcast_shared::{ClientId, GroupName, Sender, ServerEvent};
use tokio::time::Instant;

use crate::frame::Frame;
use crate::rate::SharedBuckets;
use crate::registry::Registry;
use crate::signals::{Control, Signals};

/// How often an identity's `typing` is passed on, unless configured
/// otherwise (tests).
pub const EVERY: Duration = Duration::from_millis(TYPING_EVERY_MS);

/// `typing` events waiting for the signals: a burst from many typists at
/// once; past it, they are dropped (the next one comes within seconds).
const OUTBOX: usize = 1_024;

/// Why typing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TypingError {
    #[error("cannot start the typing thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What became of one `typing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced {
    /// On its way to every node.
    Sent,
    /// Within [`EVERY`] of the identity's last one: dropped.
    TooSoon,
    /// The queue to the signals was full (or gone): dropped.
    Dropped,
}

/// The sending half, shared by every connection of a server.
pub struct Typing {
    limits: SharedBuckets<ClientId>,
    outbox: SyncSender<Control>,
}

impl std::fmt::Debug for Typing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Typing")
    }
}

impl Typing {
    /// Passes on one `typing` per identity per `every`, through `signals`
    /// on a thread of its own, which ends once this is dropped.
    pub fn start(signals: Arc<dyn Signals>, every: Duration) -> Result<Self, TypingError> {
        let (outbox, waiting) = mpsc::sync_channel::<Control>(OUTBOX);
        std::thread::Builder::new().name("roomcast-typing".into()).spawn(move || {
            for control in waiting {
                if let Err(err) = signals.broadcast(&control) {
                    // Best-effort: the next one may get through.
                    tracing::debug!(%err, "a typing event was not broadcast");
                }
            }
        })?;
        Ok(Self::with_outbox(outbox, every))
    }

    fn with_outbox(outbox: SyncSender<Control>, every: Duration) -> Self {
        // One token, refilled once per `every`: one passes, then none
        // until the interval is over.
        let rate = 1.0 / every.as_secs_f64().max(0.001);
        Self { limits: SharedBuckets::new(rate, 1), outbox }
    }

    /// `from` is typing in `group`, at `now`. Never waits.
    pub fn announce(&self, group: &GroupName, from: &Sender, now: Instant) -> Announced {
        if !self.limits.try_take(from.client_id, now) {
            return Announced::TooSoon;
        }
        match self.outbox.try_send(Control::Typing { group: group.clone(), from: from.clone() }) {
            Ok(()) => Announced::Sent,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Announced::Dropped,
        }
    }
}

/// The hearing half: what a node does with a [`Control::Typing`].
#[derive(Debug, Clone)]
pub struct Fanout {
    registry: Arc<Registry>,
}

impl Fanout {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    /// Tells `group`'s JSON members here that `from` is typing; encoded
    /// once, its bytes shared.
    pub fn heard(&self, group: &GroupName, from: Sender) {
        let except = from.client_id;
        let frame = Frame::text(ServerEvent::Typing { from }.encode());
        self.registry.signal(group, frame, except);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn sender() -> Sender {
        Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: true }
    }

    #[test]
    fn one_per_identity_per_interval_and_a_full_queue_drops() {
        let (outbox, waiting) = mpsc::sync_channel(2);
        let typing = Typing::with_outbox(outbox, EVERY);
        let group: GroupName = "lobby".parse().unwrap();
        let (ann, bob, cat) = (sender(), sender(), sender());
        let now = Instant::now();
        assert_eq!(typing.announce(&group, &ann, now), Announced::Sent);
        assert_eq!(typing.announce(&group, &ann, now + EVERY / 2), Announced::TooSoon);
        assert_eq!(typing.announce(&group, &bob, now), Announced::Sent, "each identity has its own");
        assert_eq!(typing.announce(&group, &cat, now), Announced::Dropped, "the queue holds two");
        assert_eq!(waiting.recv().unwrap(), Control::Typing { group: group.clone(), from: ann.clone() });
        assert_eq!(typing.announce(&group, &ann, now + EVERY), Announced::Sent, "the next interval");
    }
}
