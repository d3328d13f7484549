//! Questions from one node's admin surface to every node, over the control
//! channel: the asking node broadcasts [`Control::Ask`], every node (this
//! one too) answers with [`Control::Answer`], and the asker collects the
//! answers of the nodes on the live list for up to a second. Nothing is
//! stored; a node that does not answer in time is counted as missing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::sampler::Sampler;
use crate::locks::lock;
use crate::node_report::{Answer, Question};
use crate::registry::Registry;
use crate::signals::{Control, NodeId, Signals};

/// How long the asker waits for the nodes' answers.
pub const WITHIN: Duration = Duration::from_secs(1);
/// Questions waiting for answers at once (the admin surface takes at most
/// 64 sockets).
const MAX_PENDING: usize = 64;

/// The nodes' answers to one question.
#[derive(Debug, Default)]
pub struct Answers {
    pub from: Vec<(NodeId, Answer)>,
    /// Live nodes that did not answer in time.
    pub missing: usize,
}

/// Asking the nodes, and answering them.
pub struct Cluster {
    node: NodeId,
    signals: Arc<dyn Signals>,
    registry: Arc<Registry>,
    sampler: Arc<Sampler>,
    pending: Mutex<HashMap<Uuid, mpsc::Sender<(NodeId, Answer)>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish_non_exhaustive()
    }
}

/// Why the nodes could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("too many questions to the nodes at once; try again")]
    Busy,
    #[error("the other nodes cannot be asked now: {0}")]
    Unavailable(String),
}

impl Cluster {
    pub fn new(node: NodeId, signals: Arc<dyn Signals>, registry: Arc<Registry>, sampler: Arc<Sampler>) -> Arc<Self> {
        Arc::new(Self { node, signals, registry, sampler, pending: Mutex::default() })
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Asks every live node `question`; their answers within [`WITHIN`].
    pub async fn ask(&self, question: Question) -> Result<Answers, AskError> {
        let query = Uuid::new_v4();
        let (sender, mut answers) = mpsc::channel(MAX_PENDING);
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return Err(AskError::Busy);
            }
            pending.insert(query, sender);
        }
        let _asked = Asked { cluster: self, query };
        let signals = self.signals.clone();
        let control = Control::Ask { query, question };
        let live = tokio::task::spawn_blocking(move || {
            let live = signals.live_nodes()?;
            signals.broadcast(&control)?;
            Ok::<_, crate::signals::SignalError>(live)
        })
        .await
        .map_err(|err| AskError::Unavailable(err.to_string()))?
        .map_err(|err| AskError::Unavailable(err.to_string()))?;
        let mut waiting: HashSet<NodeId> = live.into_iter().collect();
        // This node answers even before its first refresh put it on the list.
        waiting.insert(self.node);
        let mut from = Vec::new();
        let deadline = tokio::time::Instant::now() + WITHIN;
        while !waiting.is_empty() {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some((node, answer))) => {
                    if waiting.remove(&node) {
                        from.push((node, answer));
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok(Answers { from, missing: waiting.len() })
    }

    /// A node asked `question` (this one too): the answer is sent from a
    /// thread of its own, as the signal handler must not wait on the
    /// network (a question comes at most every 2 s per open admin page).
    pub fn heard_ask(&self, query: Uuid, question: Question) {
        let answer = match question {
            Question::Report => Answer::Report { report: Box::new(self.sampler.report()) },
            Question::Connections { sub } => Answer::Connections { connections: self.registry.connections_of(sub) },
        };
        let signals = self.signals.clone();
        let control = Control::Answer { query, node: self.node, answer };
        let sent = std::thread::Builder::new().name("roomcast-answer".into()).spawn(move || {
            if let Err(err) = signals.broadcast(&control) {
                tracing::debug!(%err, "cannot answer an admin question");
            }
        });
        if let Err(err) = sent {
            tracing::warn!(%err, "cannot start a thread to answer an admin question");
        }
    }

    /// `node` answered `query`: kept if this node asked it.
    pub fn heard_answer(&self, query: Uuid, node: NodeId, answer: Answer) {
        if let Some(sender) = lock(&self.pending).get(&query) {
            let _ = sender.try_send((node, answer));
        }
    }
}

/// A question's place among the pending ones, given back on drop.
struct Asked<'a> {
    cluster: &'a Cluster,
    query: Uuid,
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        lock(&self.cluster.pending).remove(&self.query);
    }
}
