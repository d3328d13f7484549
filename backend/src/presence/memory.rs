//! Presence within one process: a map from group to each node's part. A
//! server without Redis is a node of one, and it keeps its presence here.

use std::collections::HashMap;
use std::sync::Mutex;

use roomcast_shared::{ClientId, GroupName, PresentMember};

use super::contract::{PresenceError, PresenceStore};
use crate::locks::lock;
use crate::signals::NodeId;
use crate::signals::NodePart;

#[derive(Debug, Default)]
pub struct MemoryPresence {
    groups: Mutex<HashMap<GroupName, HashMap<NodeId, Part>>>,
}

#[derive(Debug, Default)]
struct Part {
    people: HashMap<ClientId, PresentMember>,
    anonymous: u32,
}

impl PresenceStore for MemoryPresence {
    fn write(&self, node: NodeId, changes: &[(GroupName, NodePart)]) -> Result<(), PresenceError> {
        let mut groups = lock(&self.groups);
        for (group, change) in changes {
            let nodes = groups.entry(group.clone()).or_default();
            let part = nodes.entry(node).or_default();
            for person in &change.people {
                if person.connections == 0 {
                    part.people.remove(&person.client_id);
                } else {
                    part.people.insert(person.client_id, person.clone());
                }
            }
            if let Some(anonymous) = change.anonymous {
                part.anonymous = anonymous;
            }
            if part.people.is_empty() && part.anonymous == 0 {
                nodes.remove(&node);
            }
            if nodes.is_empty() {
                groups.remove(group);
            }
        }
        Ok(())
    }

    fn load(&self, group: &GroupName) -> Result<Vec<(NodeId, NodePart)>, PresenceError> {
        let groups = lock(&self.groups);
        let Some(nodes) = groups.get(group) else { return Ok(Vec::new()) };
        Ok(nodes
            .iter()
            .map(|(node, part)| {
                let people = part.people.values().cloned().collect();
                (*node, NodePart { people, anonymous: Some(part.anonymous) })
            })
            .collect())
    }

    fn forget(&self, group: &GroupName, nodes: &[NodeId]) -> Result<(), PresenceError> {
        let mut groups = lock(&self.groups);
        if let Some(parts) = groups.get_mut(group) {
            parts.retain(|node, _| !nodes.contains(node));
            if parts.is_empty() {
                groups.remove(group);
            }
        }
        Ok(())
    }
}
