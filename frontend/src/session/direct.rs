//! Direct messages as the app sees them: a room whose name is a hash of two
//! client ids ([`GroupName::direct`]), opened with the other participant's
//! id (`with`), which every request for it carries (the server cannot
//! invert the hash). What its header calls the other person, and why the
//! server refuses one for good.

use roomcast_shared::{ClientId, DisplayName, GroupName, PresentMember};

/// A direct message room: its name and the other participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    pub group: GroupName,
    pub with: ClientId,
}

impl Direct {
    /// The direct message of `me` with `them`.
    pub fn between(me: ClientId, them: ClientId) -> Self {
        Self { group: GroupName::direct(me, them), with: them }
    }

    /// What the socket's URL and the history API's query carry:
    /// `&with={client id}`.
    pub fn query(&self) -> String {
        format!("&with={}", self.with)
    }

    /// Why the server refuses `me` this room for good (it said 403): not
    /// one of its two participants (the link was shared with a third
    /// person), or an identity whose token does not allow direct messages.
    pub fn refusal(&self, me: ClientId) -> Refusal {
        if GroupName::direct(me, self.with) == self.group {
            Refusal::NotAllowed
        } else {
            Refusal::OtherPeople
        }
    }

    /// What the header says: "Direct message with Alice". The name is the
    /// one presence lists, else the one on their latest message here
    /// (`last_name`), else their guest name.
    pub fn title(&self, present: &[PresentMember], last_name: Option<&DisplayName>) -> String {
        let listed = present.iter().find(|member| member.client_id == self.with).and_then(|m| m.name.as_ref());
        let name = listed.or(last_name).map_or_else(|| guest_name(self.with), ToString::to_string);
        format!("Direct message with {name}")
    }
}

/// Why a room is refused for good: the link stops, and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A direct message of two other identities.
    OtherPeople,
    /// This identity's token does not allow direct messages.
    NotAllowed,
}

impl Refusal {
    pub fn text(self) -> &'static str {
        match self {
            Self::OtherPeople => "This direct message is between two other people",
            Self::NotAllowed => "This server does not allow this browser's identity direct messages",
        }
    }
}

/// What someone without a display name is called: `guest-` and the start
/// of their client id.
pub fn guest_name(client_id: ClientId) -> String {
    format!("guest-{}", &client_id.to_string()[..4])
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn id(n: u128) -> ClientId {
        ClientId(Uuid::from_u128(n))
    }

    fn member(client: ClientId, name: Option<&str>) -> PresentMember {
        PresentMember { client_id: client, name: name.map(|name| name.parse().unwrap()), connections: 1 }
    }

    #[test]
    fn both_sides_open_the_same_room_each_naming_the_other() {
        let (alice, bob) = (id(1), id(2));
        let (hers, his) = (Direct::between(alice, bob), Direct::between(bob, alice));
        assert_eq!(hers.group, his.group);
        assert!(hers.group.is_direct());
        assert_eq!((hers.with, his.with), (bob, alice));
        assert_eq!(hers.query(), format!("&with={bob}"));
    }

    #[test]
    fn a_refusal_says_whether_the_room_is_someone_elses() {
        let (alice, bob, carol) = (id(1), id(2), id(3));
        let link = Direct::between(alice, bob);
        assert_eq!(link.refusal(carol), Refusal::OtherPeople, "Alice's link, opened by Carol");
        assert_eq!(link.refusal(alice), Refusal::NotAllowed, "her own: the token must be what is refused");
        assert_eq!(Refusal::OtherPeople.text(), "This direct message is between two other people");
    }

    #[test]
    fn the_title_names_them_from_presence_then_their_messages_then_their_id() {
        let (alice, bob) = (id(1), id(0xabcd_u128 << 112));
        let direct = Direct::between(alice, bob);
        let present = [member(alice, Some("Alice")), member(bob, Some("Bob"))];
        let old_name: DisplayName = "Bobby".parse().unwrap();
        assert_eq!(direct.title(&present, Some(&old_name)), "Direct message with Bob");
        let unnamed = [member(alice, Some("Alice")), member(bob, None)];
        assert_eq!(direct.title(&unnamed, Some(&old_name)), "Direct message with Bobby");
        assert_eq!(direct.title(&present[..1], Some(&old_name)), "Direct message with Bobby", "not here");
        assert_eq!(direct.title(&[], None), "Direct message with guest-abcd");
    }
}
