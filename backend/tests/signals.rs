//! The signals contract, the same cases against both implementations: in
//! memory (nodes of one process on a hub) and Redis (a private
//! `redis-server` on a free port, in the Redis tier: `--features
//! redis-tests`). A node is what `join` returns; what its handler hears is
//! recorded in order.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_backend::signals::memory::MemoryHub;
use roomcast_backend::signals::{Control, Handler, NodeId, Sanction, Signal, Signals};
use roomcast_shared::ClientId;
use support::eventually;
use uuid::Uuid;

/// What one node's handler heard, in order.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<Signal>>>);

impl Heard {
    fn handler(&self) -> Handler {
        let heard = self.0.clone();
        Arc::new(move |signal| {
            heard.lock().unwrap().push(signal);
            Ok(())
        })
    }

    fn count(&self, signal: &Signal) -> usize {
        self.0.lock().unwrap().iter().filter(|heard| *heard == signal).count()
    }
}

/// The deployment a case joins its nodes to.
trait Deployment {
    fn join(&self, handler: Handler) -> Box<dyn Signals>;
}

impl Deployment for MemoryHub {
    fn join(&self, handler: Handler) -> Box<dyn Signals> {
        Box::new(MemoryHub::join(self, handler))
    }
}

fn a_revocation(issued_before: u64) -> Control {
    Control::Identity(Sanction::Revoke { sub: ClientId(Uuid::new_v4()), issued_before })
}

/// A broadcast from node A reaches A and B, each once.
async fn a_broadcast_reaches_every_node_once(deployment: &impl Deployment) {
    let (a_heard, b_heard) = (Heard::default(), Heard::default());
    let a = deployment.join(a_heard.handler());
    let b = deployment.join(b_heard.handler());
    eventually(|| a_heard.count(&Signal::Listening) == 1 && b_heard.count(&Signal::Listening) == 1).await;
    let first = a_revocation(1);
    a.broadcast(&first).unwrap();
    // Sent after the first one was taken, so heard after it everywhere:
    // once it is in, the first one cannot come again.
    let then = a_revocation(2);
    b.broadcast(&then).unwrap();
    let (first, then) = (Signal::Control(first), Signal::Control(then));
    eventually(|| a_heard.count(&then) == 1 && b_heard.count(&then) == 1).await;
    assert_eq!((a_heard.count(&first), b_heard.count(&first)), (1, 1), "each node heard it once");
}

/// A node that stops refreshing its place is gone from every node's list
/// after its time to live; one that leaves is gone at once.
async fn a_node_that_stops_refreshing_leaves_the_list(deployment: &impl Deployment) {
    let a = deployment.join(Heard::default().handler());
    let b = deployment.join(Heard::default().handler());
    let (quiet, staying) = (NodeId::random(), NodeId::random());
    a.refresh(quiet, Duration::from_secs(1)).unwrap();
    a.refresh(staying, Duration::from_secs(60)).unwrap();
    let live = || b.live_nodes().unwrap();
    assert!(live().contains(&quiet) && live().contains(&staying), "seen from the other node");
    eventually(|| !live().contains(&quiet)).await;
    assert!(live().contains(&staying), "only the quiet one");
    a.leave(staying).unwrap();
    assert!(live().is_empty(), "a node that leaves is off the list at once");
}

#[tokio::test]
async fn in_memory_a_broadcast_reaches_every_node_once() {
    a_broadcast_reaches_every_node_once(&MemoryHub::default()).await;
}

#[tokio::test]
async fn in_memory_a_node_that_stops_refreshing_leaves_the_list() {
    a_node_that_stops_refreshing_leaves_the_list(&MemoryHub::default()).await;
}

/// The same cases over Redis.
#[cfg(feature = "redis-tests")]
mod over_redis {
    use roomcast_backend::signals::redis_signals::RedisSignals;
    use roomcast_testkit::LocalRedis;

    use super::*;

    impl Deployment for LocalRedis {
        fn join(&self, handler: Handler) -> Box<dyn Signals> {
            Box::new(RedisSignals::open(&self.url(), handler).expect("a valid URL"))
        }
    }

    fn redis() -> LocalRedis {
        LocalRedis::start().expect("a local redis-server (the test script installs Debian's)")
    }

    #[tokio::test]
    async fn a_broadcast_reaches_every_node_once() {
        super::a_broadcast_reaches_every_node_once(&redis()).await;
    }

    #[tokio::test]
    async fn a_node_that_stops_refreshing_leaves_the_list() {
        super::a_node_that_stops_refreshing_leaves_the_list(&redis()).await;
    }

    /// Redis restarted: the subscription is made again, the handler hears
    /// `Listening` again (to read what it missed), and broadcasts get through.
    #[tokio::test]
    async fn the_control_channel_comes_back_after_a_restart() {
        let mut redis = redis();
        let heard = Heard::default();
        let node = Deployment::join(&redis, heard.handler());
        eventually(|| heard.count(&Signal::Listening) == 1).await;
        redis.restart().expect("redis-server starts again");
        eventually(|| heard.count(&Signal::Listening) >= 2).await;
        let control = a_revocation(3);
        node.broadcast(&control).expect("sent on a new connection");
        let control = Signal::Control(control);
        eventually(|| heard.count(&control) == 1).await;
    }
}
