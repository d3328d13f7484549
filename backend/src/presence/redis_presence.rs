//! Presence in Redis, the kind of structure Centrifugo keeps: one hash per
//! group, `rc:{group}:presence`, with a field per node and identity
//! (`{node}/{sub}`: the identity's name and connections on that node, as
//! JSON) and per node for its anonymous connections (`{node}/anon`).
//!
//! Nothing in it is trusted past its node's life: readers keep only the
//! fields of live nodes (the signal half's list, on Redis's clock), and
//! remove the others'. The hash itself expires [`KEY_TTL`] after the last
//! write; every node with people in a group writes its whole part again
//! more often than that, so a group nobody is in anymore is gone without
//! anyone deleting it.

use std::collections::HashMap;
use std::time::Duration;

use redis::{Client, Pipeline};
use roomcast_shared::{GroupName, PresentMember};

use super::contract::{PresenceError, PresenceStore};
use crate::redis_commands::Commands;
use crate::signals::NodeId;
use crate::signals::NodePart;

/// How long a group's hash outlives its last write.
pub const KEY_TTL: Duration = Duration::from_secs(30);

/// The field of a node's anonymous count.
const ANONYMOUS: &str = "anon";

#[derive(Debug)]
pub struct RedisPresence {
    commands: Commands,
}

impl RedisPresence {
    /// Presence in the Redis at `url` (reached when first used).
    pub fn open(url: &str) -> Result<Self, PresenceError> {
        let client = Client::open(url).map_err(unavailable)?;
        Ok(Self { commands: Commands::new(client) })
    }
}

/// The hash of `group`'s presence, in the group's hash slot.
pub fn key(group: &GroupName) -> String {
    format!("rc:{{{group}}}:presence")
}

fn field(node: NodeId, who: &str) -> String {
    format!("{node}/{who}")
}

impl PresenceStore for RedisPresence {
    fn write(&self, node: NodeId, changes: &[(GroupName, NodePart)]) -> Result<(), PresenceError> {
        let mut pipe = Pipeline::new();
        for (group, part) in changes {
            let key = key(group);
            for person in &part.people {
                let field = field(node, &person.client_id.to_string());
                if person.connections == 0 {
                    pipe.hdel(&key, field).ignore();
                } else {
                    let value = serde_json::to_string(person).map_err(|err| PresenceError::Unavailable(err.into()))?;
                    pipe.hset(&key, field, value).ignore();
                }
            }
            match part.anonymous {
                Some(0) => {
                    pipe.hdel(&key, field(node, ANONYMOUS)).ignore();
                }
                Some(count) => {
                    pipe.hset(&key, field(node, ANONYMOUS), count).ignore();
                }
                None => {}
            }
            pipe.pexpire(&key, i64::try_from(KEY_TTL.as_millis()).unwrap_or(i64::MAX)).ignore();
        }
        self.commands.run(|connection| pipe.query::<()>(connection)).map_err(unavailable)
    }

    fn load(&self, group: &GroupName) -> Result<Vec<(NodeId, NodePart)>, PresenceError> {
        let key = key(group);
        let fields: HashMap<String, String> =
            self.commands.run(|connection| redis::cmd("HGETALL").arg(&key).query(connection)).map_err(unavailable)?;
        let mut parts: HashMap<NodeId, NodePart> = HashMap::new();
        for (field, value) in fields {
            // Fields another program wrote, or a newer node's that this one
            // cannot read, are not anyone's presence here.
            let Some((node, who)) = field.split_once('/') else { continue };
            let Ok(node) = node.parse::<NodeId>() else { continue };
            let part = parts.entry(node).or_default();
            if who == ANONYMOUS {
                part.anonymous = value.parse().ok();
            } else if let Ok(person) = serde_json::from_str::<PresentMember>(&value) {
                part.people.push(person);
            }
        }
        Ok(parts.into_iter().collect())
    }

    fn forget(&self, group: &GroupName, nodes: &[NodeId]) -> Result<(), PresenceError> {
        let key = key(group);
        let fields: Vec<String> =
            self.commands.run(|connection| redis::cmd("HKEYS").arg(&key).query(connection)).map_err(unavailable)?;
        let gone: Vec<&String> = fields
            .iter()
            .filter(|field| {
                field
                    .split_once('/')
                    .and_then(|(node, _)| node.parse::<NodeId>().ok())
                    .is_some_and(|node| nodes.contains(&node))
            })
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.commands
            .run(|connection| redis::cmd("HDEL").arg(&key).arg(&gone).query::<u64>(connection))
            .map_err(unavailable)?;
        Ok(())
    }
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PresenceError {
    PresenceError::Unavailable(Box::new(err))
}
