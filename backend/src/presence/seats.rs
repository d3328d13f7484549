//! This node's connections per group and identity: what it tells the
//! other nodes (and the store) about itself.
//!
//! A connection takes a seat when it starts and gives it back when it ends
//! ([`Seat`] on `Drop`). What changed is handed out by [`Seats::take`] once
//! per tick, as each group's [`NodePart`]: an identity whose last
//! connection here closed stays, with the connections it had, for the
//! grace, and leaves only if none came back in it (a reload shows
//! nothing). What [`Seats::published`] confirms is not handed out again; a
//! failed write is simply taken again at the next tick.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_shared::{ClientId, DisplayName, GroupName, PresentMember};
use tokio::time::Instant;

use crate::locks::lock;
use crate::signals::NodePart;

/// Who holds a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A verified identity (the token's `sub`), with the name it shows.
    Person { sub: ClientId, name: Option<DisplayName> },
    /// A connection without a verified identity: counted, never named.
    Anonymous,
}

#[derive(Debug)]
pub struct Seats {
    state: Mutex<State>,
    grace: Duration,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<GroupName, Local>,
    /// Groups with something not yet published, or an identity in its
    /// grace.
    dirty: HashSet<GroupName>,
    /// Groups opened here since the last [`Seats::take`].
    opened: Vec<GroupName>,
}

#[derive(Debug, Default)]
struct Local {
    people: HashMap<ClientId, Person>,
    anonymous: u32,
    published_anonymous: u32,
}

#[derive(Debug)]
struct Person {
    name: Option<DisplayName>,
    connections: u32,
    /// What the other nodes were last told.
    published: u32,
    /// When its last connection here closed, while none is open.
    empty_since: Option<Instant>,
}

/// What changed here since the last tick.
#[derive(Debug, Default)]
pub struct Taken {
    /// Each group's change, for the store and the other nodes.
    pub changes: Vec<(GroupName, NodePart)>,
    /// Groups this node has connections in, new since the last tick.
    pub opened: Vec<GroupName>,
    /// Groups it has nobody in any more, with nothing to tell (their
    /// first seats came and went within a tick).
    pub closed: Vec<GroupName>,
}

/// A connection's place in its group's presence, given back on `Drop`.
#[derive(Debug)]
pub struct Seat {
    seats: Arc<Seats>,
    group: GroupName,
    who: Who,
}

impl Seats {
    pub fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Self { state: Mutex::default(), grace })
    }

    /// `who` connected to `group` here.
    pub fn take_seat(self: &Arc<Self>, group: &GroupName, who: Who) -> Seat {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let local = state.groups.entry(group.clone()).or_insert_with(|| {
            state.opened.push(group.clone());
            Local::default()
        });
        match &who {
            Who::Person { sub, name } => {
                let person = local.people.entry(*sub).or_insert(Person {
                    name: None,
                    connections: 0,
                    published: 0,
                    empty_since: None,
                });
                person.connections += 1;
                person.empty_since = None;
                // The newest connection's name is the one shown.
                person.name.clone_from(name);
            }
            Who::Anonymous => local.anonymous += 1,
        }
        state.dirty.insert(group.clone());
        Seat { seats: self.clone(), group: group.clone(), who }
    }

    fn give_back(&self, group: &GroupName, who: &Who, now: Instant) {
        let mut state = lock(&self.state);
        let Some(local) = state.groups.get_mut(group) else { return };
        match who {
            Who::Person { sub, .. } => {
                if let Some(person) = local.people.get_mut(sub) {
                    person.connections = person.connections.saturating_sub(1);
                    if person.connections == 0 {
                        person.empty_since = Some(now);
                    }
                }
            }
            Who::Anonymous => local.anonymous = local.anonymous.saturating_sub(1),
        }
        state.dirty.insert(group.clone());
    }

    /// What changed since the last call, at `now`. An identity with no
    /// connection here left once its grace is over; until then it stays as
    /// it was published.
    pub fn take(&self, now: Instant) -> Taken {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let mut changes = Vec::new();
        let grace = self.grace;
        let mut emptied = Vec::new();
        state.dirty.retain(|group| {
            let Some(local) = state.groups.get_mut(group) else { return false };
            let mut part = NodePart::default();
            let mut waiting = false;
            local.people.retain(|sub, person| {
                let connections = match person.empty_since {
                    Some(since) if now.duration_since(since) < grace => {
                        waiting = true;
                        return true;
                    }
                    _ => person.connections,
                };
                if connections != person.published {
                    part.people.push(PresentMember { client_id: *sub, name: person.name.clone(), connections });
                }
                // Came and went before anyone was told: nothing to say.
                connections > 0 || person.published > 0
            });
            if local.anonymous != local.published_anonymous {
                part.anonymous = Some(local.anonymous);
            }
            let keep = waiting || !part.is_empty();
            if part.is_empty() {
                if local.is_empty() {
                    emptied.push(group.clone());
                }
            } else {
                changes.push((group.clone(), part));
            }
            keep
        });
        for group in &emptied {
            state.groups.remove(group);
        }
        Taken { changes, opened: std::mem::take(&mut state.opened), closed: emptied }
    }

    /// The other nodes were told `changes` (from [`take`](Self::take)).
    /// Returns the groups that now have nobody here.
    pub fn published(&self, changes: &[(GroupName, NodePart)]) -> Vec<GroupName> {
        let mut state = lock(&self.state);
        let mut closed = Vec::new();
        for (group, part) in changes {
            let Some(local) = state.groups.get_mut(group) else { continue };
            for told in &part.people {
                if let Some(person) = local.people.get_mut(&told.client_id) {
                    person.published = told.connections;
                    if person.connections == 0 && told.connections == 0 {
                        local.people.remove(&told.client_id);
                    }
                }
            }
            if let Some(anonymous) = part.anonymous {
                local.published_anonymous = anonymous;
            }
            if local.is_empty() {
                state.groups.remove(group);
                closed.push(group.clone());
            } else if local.people.values().any(|person| person.connections != person.published)
                || local.anonymous != local.published_anonymous
            {
                // Moved again while it was written.
                state.dirty.insert(group.clone());
            }
        }
        closed
    }

    /// Everything this node has published, per group: what it writes again
    /// now and then, so that what the store lost (an expiry, a failover)
    /// comes back.
    pub fn whole(&self) -> Vec<(GroupName, NodePart)> {
        let state = lock(&self.state);
        state
            .groups
            .iter()
            .map(|(group, local)| {
                let people = local
                    .people
                    .iter()
                    .filter(|(_, person)| person.published > 0)
                    .map(|(sub, person)| PresentMember {
                        client_id: *sub,
                        name: person.name.clone(),
                        connections: person.published,
                    })
                    .collect();
                (group.clone(), NodePart { people, anonymous: Some(local.published_anonymous) })
            })
            .collect()
    }
}

impl Local {
    /// Nobody here, and the other nodes know it.
    fn is_empty(&self) -> bool {
        self.people.is_empty() && self.anonymous == 0 && self.published_anonymous == 0
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.seats.give_back(&self.group, &self.who, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    fn person(sub: ClientId) -> Who {
        Who::Person { sub, name: Some("Ann".parse().unwrap()) }
    }

    fn published(seats: &Seats, now: Instant) -> (Vec<(GroupName, NodePart)>, Vec<GroupName>) {
        let taken = seats.take(now);
        let closed = seats.published(&taken.changes);
        (taken.changes, closed)
    }

    fn connections(changes: &[(GroupName, NodePart)]) -> Vec<u32> {
        changes.iter().flat_map(|(_, part)| part.people.iter().map(|person| person.connections)).collect()
    }

    #[test]
    fn a_reload_within_the_grace_publishes_nothing_and_a_close_leaves_after_it() {
        let seats = Seats::new(GRACE);
        let group: GroupName = "lobby".parse().unwrap();
        let ann = ClientId(Uuid::new_v4());
        let now = Instant::now();
        let seat = seats.take_seat(&group, person(ann));
        let taken = seats.take(now);
        assert_eq!(taken.opened, vec![group.clone()]);
        assert_eq!(connections(&taken.changes), vec![1]);
        seats.published(&taken.changes);

        drop(seat);
        let seat = seats.take_seat(&group, person(ann));
        assert!(published(&seats, now + Duration::from_secs(1)).0.is_empty(), "a reload shows nothing");
        drop(seat);
        assert!(published(&seats, Instant::now() + Duration::from_secs(4)).0.is_empty(), "within the grace");
        let (changes, closed) = published(&seats, Instant::now() + GRACE);
        assert_eq!(connections(&changes), vec![0], "gone after the grace");
        assert_eq!(closed, vec![group]);
    }

    #[test]
    fn counts_change_at_once_and_anonymous_connections_are_counted() {
        let seats = Seats::new(GRACE);
        let group: GroupName = "lobby".parse().unwrap();
        let ann = ClientId(Uuid::new_v4());
        let now = Instant::now();
        let first = seats.take_seat(&group, person(ann));
        let second = seats.take_seat(&group, person(ann));
        let anonymous = seats.take_seat(&group, Who::Anonymous);
        let (changes, _) = published(&seats, now);
        assert_eq!(connections(&changes), vec![2]);
        assert_eq!(changes[0].1.anonymous, Some(1));
        drop(second);
        drop(anonymous);
        let (changes, _) = published(&seats, now);
        assert_eq!((connections(&changes), changes[0].1.anonymous), (vec![1], Some(0)));
        assert_eq!(seats.whole()[0].1.people[0].connections, 1);
        drop(first);
    }

    #[test]
    fn a_failed_write_is_taken_again() {
        let seats = Seats::new(GRACE);
        let group: GroupName = "lobby".parse().unwrap();
        let _seat = seats.take_seat(&group, person(ClientId(Uuid::new_v4())));
        let now = Instant::now();
        assert_eq!(connections(&seats.take(now).changes), vec![1]);
        assert_eq!(connections(&seats.take(now).changes), vec![1], "not confirmed: again");
    }
}
