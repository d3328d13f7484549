//! Who is in the room, as the server tells it: a `presence` snapshot
//! (after each connection's replay, and whenever the server finds this
//! client's view may be stale), then `join`s and `leave`s. The list is
//! kept per identity, with each one's number of connections.

use std::collections::HashMap;
use std::rc::Rc;

use roomcast_shared::{ClientId, DisplayName, PresenceCount, PresentMember, ServerEvent};

/// The room's people as this client knows them.
#[derive(Debug, Default)]
pub struct People {
    members: HashMap<ClientId, PresentMember>,
    count: PresenceCount,
}

/// What the view shows: the people in listing order, and the counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeopleShown {
    pub members: Vec<PresentMember>,
    pub count: PresenceCount,
}

impl PeopleShown {
    /// People present but not in the list (the snapshot lists a bounded
    /// number; above the threshold, none).
    pub fn unlisted(&self) -> u32 {
        self.count.people.saturating_sub(u32::try_from(self.members.len()).unwrap_or(u32::MAX))
    }
}

impl People {
    /// Takes `event` if it is about presence; returns whether it was.
    pub fn heard(&mut self, event: &ServerEvent) -> bool {
        match event {
            ServerEvent::Presence { members, count } => {
                self.members = members.iter().map(|member| (member.client_id, member.clone())).collect();
                self.count = *count;
            }
            ServerEvent::Join { members, count } => {
                self.members.extend(members.iter().map(|member| (member.client_id, member.clone())));
                self.count = *count;
            }
            ServerEvent::Leave { ids, count } => {
                for id in ids {
                    self.members.remove(id);
                }
                self.count = *count;
            }
            _ => return false,
        }
        if !self.count.listed {
            self.members.clear();
        }
        true
    }

    /// What `client_id` is called in the list, if it is listed with a
    /// name.
    pub fn name_of(&self, client_id: ClientId) -> Option<&DisplayName> {
        self.members.get(&client_id)?.name.as_ref()
    }

    pub fn shown(&self) -> Rc<PeopleShown> {
        let mut members: Vec<PresentMember> = self.members.values().cloned().collect();
        members.sort_by(PresentMember::listing_order);
        Rc::new(PeopleShown { members, count: self.count })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn member(name: &str, connections: u32) -> PresentMember {
        PresentMember { client_id: ClientId(Uuid::new_v4()), name: Some(name.parse().unwrap()), connections }
    }

    fn count(people: u32, listed: bool) -> PresenceCount {
        PresenceCount { people, anonymous: 0, listed }
    }

    #[test]
    fn a_snapshot_then_joins_and_leaves_in_listing_order() {
        let mut people = People::default();
        let (bob, ann) = (member("bob", 1), member("Ann", 1));
        assert!(people.heard(&ServerEvent::Presence { members: vec![bob.clone()], count: count(1, true) }));
        assert!(people.heard(&ServerEvent::Join { members: vec![ann.clone()], count: count(2, true) }));
        assert_eq!(people.shown().members, [ann.clone(), bob.clone()], "by name, whatever the case");
        let two_tabs = PresentMember { connections: 2, ..bob.clone() };
        people.heard(&ServerEvent::Join { members: vec![two_tabs.clone()], count: count(2, true) });
        people.heard(&ServerEvent::Leave { ids: vec![ann.client_id], count: count(1, true) });
        assert_eq!(*people.shown(), PeopleShown { members: vec![two_tabs], count: count(1, true) });
        assert!(!people.heard(&ServerEvent::Pong), "not presence");
    }

    #[test]
    fn counts_only_clear_the_list_and_a_partial_snapshot_says_how_many_are_unlisted() {
        let mut people = People::default();
        people.heard(&ServerEvent::Presence { members: vec![member("Ann", 1)], count: count(250, true) });
        assert_eq!(people.shown().unlisted(), 249);
        people.heard(&ServerEvent::Presence { members: Vec::new(), count: count(1_500, false) });
        let shown = people.shown();
        assert!(shown.members.is_empty() && !shown.count.listed);
        assert_eq!(shown.unlisted(), 1_500);
    }
}
