//! "Seen by Alice, Bob": who has read this user's own latest message, from
//! the server's `seen` events. A small group's members get its readers
//! after each `welcome`, then each reader's move; a larger group gets none,
//! and nothing is shown.
//!
//! - **Who.** A reader other than this identity whose cursor (in the
//!   group's current epoch) is at or past this identity's latest message
//!   delivered here (its own verified message with the highest number).
//! - **Named** as the people list names them, else as their last message
//!   did, else `guest-xxxx`; listed by name. Past three readers: the first
//!   two and how many others.
//! - **Each connection** starts over: its `seen` (or none, if the group has
//!   grown) replaces what the last one told; the line shown stays until
//!   then, as the people list does.

use std::collections::HashMap;
use std::fmt;

use roomcast_shared::{ChatMessage, ClientId, Reader};

use super::direct::guest_name;
use super::presence::People;

/// Senders whose name is kept from their messages: a small group's
/// readers are fewer.
const MAX_NAMES: usize = 256;

/// Names listed before "and N others".
const LISTED: usize = 3;

/// A room view's "seen by", across its connections.
#[derive(Debug, Default)]
pub struct SeenBy {
    /// This browser's identity, as the last `welcome` had it.
    me: Option<ClientId>,
    /// The group's epoch (the last `welcome`'s or `reset`'s).
    epoch: Option<String>,
    /// How far each reader has read, as the server told it.
    readers: HashMap<ClientId, u64>,
    /// This identity's latest message delivered here.
    mine: Option<u64>,
    /// Senders' names from their messages.
    names: HashMap<ClientId, String>,
    /// The line last handed to the view.
    told: Option<SeenByLine>,
}

/// What the view shows under one's own latest message.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenByLine {
    /// The number of that message.
    pub under: u64,
    /// The names shown, in order.
    pub names: Vec<String>,
    /// Readers beyond them.
    pub others: usize,
}

impl fmt::Display for SeenByLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seen by {}", self.names.join(", "))?;
        match self.others {
            0 => Ok(()),
            1 => write!(f, " and 1 other"),
            others => write!(f, " and {others} others"),
        }
    }
}

impl SeenBy {
    /// A connection was welcomed as `me` in `epoch`: its `seen` follows
    /// (or none, in a large group), replacing the readers known. Another
    /// epoch is another history: one's latest message is not in it.
    pub fn welcomed(&mut self, epoch: &str, me: ClientId) {
        if self.epoch.as_deref() != Some(epoch) || self.me != Some(me) {
            self.mine = None;
        }
        self.me = Some(me);
        self.epoch = Some(epoch.to_owned());
        self.readers.clear();
    }

    /// The group's history started over in `epoch`.
    pub fn reset(&mut self, epoch: &str) {
        self.epoch = Some(epoch.to_owned());
        self.readers.clear();
        self.mine = None;
    }

    /// A `seen` event: each reader's cursor in `epoch`.
    pub fn heard(&mut self, epoch: &str, readers: &[Reader]) {
        if self.epoch.as_deref() != Some(epoch) {
            return;
        }
        for reader in readers {
            let seq = self.readers.entry(reader.client_id).or_default();
            *seq = (*seq).max(reader.seq);
        }
    }

    /// A message was delivered (replayed or live).
    pub fn received(&mut self, message: &ChatMessage) {
        let from = &message.from;
        if from.verified && Some(from.client_id) == self.me {
            self.mine = Some(self.mine.map_or(message.seq, |mine| mine.max(message.seq)));
        }
        if let Some(name) = from.name.as_ref().filter(|_| from.verified) {
            if self.names.len() < MAX_NAMES || self.names.contains_key(&from.client_id) {
                self.names.insert(from.client_id, name.to_string());
            }
        }
    }

    /// The line to show now, with names from `people` first.
    pub fn line(&self, people: &People) -> Option<SeenByLine> {
        let under = self.mine?;
        let mut names: Vec<(String, ClientId)> = self
            .readers
            .iter()
            .filter(|(reader, seq)| Some(**reader) != self.me && **seq >= under)
            .map(|(reader, _)| (self.name_of(*reader, people), *reader))
            .collect();
        if names.is_empty() {
            return None;
        }
        names.sort_by(|a, b| a.0.to_lowercase().cmp(&b.0.to_lowercase()).then(a.1 .0.cmp(&b.1 .0)));
        let shown = if names.len() > LISTED { LISTED - 1 } else { names.len() };
        let others = names.len() - shown;
        Some(SeenByLine { under, names: names.into_iter().take(shown).map(|(name, _)| name).collect(), others })
    }

    /// The line to hand to the view, when it differs from the one last
    /// handed (`Some(None)`: none any more).
    pub fn changed(&mut self, people: &People) -> Option<Option<SeenByLine>> {
        let line = self.line(people);
        (line != self.told).then(|| {
            self.told.clone_from(&line);
            line
        })
    }

    fn name_of(&self, reader: ClientId, people: &People) -> String {
        people
            .name_of(reader)
            .map(ToString::to_string)
            .or_else(|| self.names.get(&reader).cloned())
            .unwrap_or_else(|| guest_name(reader))
    }
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{MessageId, PresenceCount, PresentMember, Sender, ServerEvent};
    use uuid::Uuid;

    use super::*;

    fn id(n: u128) -> ClientId {
        ClientId(Uuid::from_u128(n))
    }

    fn message(seq: u64, from: ClientId, name: Option<&str>) -> ChatMessage {
        ChatMessage {
            group: "team".parse().unwrap(),
            seq,
            id: MessageId(Uuid::new_v4()),
            from: Sender { client_id: from, name: name.map(|name| name.parse().unwrap()), verified: true },
            text: "hi".into(),
            ts: 0,
        }
    }

    fn readers(pairs: &[(ClientId, u64)]) -> Vec<Reader> {
        pairs.iter().map(|&(client_id, seq)| Reader { client_id, seq }).collect()
    }

    fn shown(seen: &SeenBy, people: &People) -> Option<String> {
        seen.line(people).map(|line| line.to_string())
    }

    const ME: u128 = 1;

    #[test]
    fn readers_at_or_past_ones_latest_message_but_oneself_are_named() {
        let (me, bob, cat) = (id(ME), id(2), id(3));
        let mut seen = SeenBy::default();
        let people = People::default();
        seen.welcomed("e", me);
        seen.heard("e", &readers(&[(bob, 1), (me, 9)]));
        assert_eq!(shown(&seen, &people), None, "nothing of mine delivered");
        seen.received(&message(1, bob, Some("Bob")));
        seen.received(&message(2, me, Some("Me")));
        assert_eq!(shown(&seen, &people), None, "Bob read up to 1; my own cursor does not count");
        seen.heard("e", &readers(&[(bob, 2), (cat, 2)]));
        assert_eq!(shown(&seen, &people).as_deref(), Some("Seen by Bob, guest-0000"), "no name: a guest");
        seen.received(&message(3, me, None));
        assert_eq!(shown(&seen, &people), None, "my newer message is not read yet");
        seen.heard("e", &readers(&[(cat, 3), (bob, 1)]));
        let line = seen.line(&people).unwrap();
        assert_eq!((line.under, line.to_string()), (3, "Seen by guest-0000".to_owned()), "a lower number is ignored");
        seen.heard("old", &readers(&[(bob, 9)]));
        assert_eq!(shown(&seen, &people).as_deref(), Some("Seen by guest-0000"), "another epoch's is not read here");
    }

    #[test]
    fn presence_names_first_and_past_three_the_first_two_and_the_others() {
        let me = id(ME);
        let mut seen = SeenBy::default();
        let mut people = People::default();
        seen.welcomed("e", me);
        seen.received(&message(1, id(2), Some("Bob")));
        seen.received(&message(2, me, None));
        seen.heard("e", &readers(&[(id(2), 2), (id(3), 2)]));
        let members = vec![
            PresentMember { client_id: id(2), name: Some("Robert".parse().unwrap()), connections: 1 },
            PresentMember { client_id: id(3), name: Some("ann".parse().unwrap()), connections: 1 },
        ];
        people
            .heard(&ServerEvent::Presence { members, count: PresenceCount { people: 2, anonymous: 0, listed: true } });
        assert_eq!(shown(&seen, &people).as_deref(), Some("Seen by ann, Robert"), "by name, whatever the case");
        seen.heard("e", &readers(&[(id(4), 5), (id(5), 5)]));
        assert_eq!(shown(&seen, &people).as_deref(), Some("Seen by ann, guest-0000 and 2 others"));
        seen.heard("e", &readers(&[(id(6), 5)]));
        assert!(shown(&seen, &people).unwrap().ends_with("and 3 others"));
    }

    #[test]
    fn each_welcome_starts_over_and_the_view_hears_only_changes() {
        let (me, bob) = (id(ME), id(2));
        let mut seen = SeenBy::default();
        let people = People::default();
        seen.welcomed("e", me);
        seen.received(&message(1, me, None));
        seen.heard("e", &readers(&[(bob, 1)]));
        assert!(matches!(seen.changed(&people), Some(Some(_))));
        assert_eq!(seen.changed(&people), None, "nothing new");
        seen.welcomed("e", me);
        assert_eq!(seen.changed(&people), Some(None), "a large group now: no seen came");
        seen.heard("e", &readers(&[(bob, 1)]));
        assert!(seen.line(&people).is_some(), "same epoch: my message is still the latest");
        seen.welcomed("f", me);
        seen.heard("f", &readers(&[(bob, 1)]));
        assert_eq!(seen.line(&people), None, "another history: my message is not in it");
        seen.received(&message(1, me, None));
        seen.reset("g");
        seen.heard("g", &readers(&[(bob, 1)]));
        assert_eq!(seen.line(&people), None);
    }
}
