//! Session tickets, for plain `EventSource` clients (which cannot set
//! `Authorization`): a stand-in for the token in an event stream's URL
//! (`?ticket=`), good for that stream alone.
//!
//! A ticket is an HS256 JWT signed with the server's secret (so any node
//! checks it) whose `tkt` claim scopes it: one group, the client id of the
//! token that asked for it, and the address that asked. It is refused as a
//! token everywhere else. It opens its stream once, within
//! [`OPEN_WITHIN_SECONDS`] (the node that opens it remembers it until
//! then); the browser's own reconnects of that stream, which name their
//! `Last-Event-ID`, may use it again until it expires: at most
//! [`LIFETIME_SECONDS`] after it was issued, and never after the token that
//! asked for it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A ticket opens its stream within this many seconds of being issued.
pub const OPEN_WITHIN_SECONDS: u64 = 30;
/// A ticket's stream resumes with it for at most this long.
pub const LIFETIME_SECONDS: u64 = 3_600;
/// Tickets a node remembers as opened at once (each is forgotten
/// [`OPEN_WITHIN_SECONDS`] after it was issued): beyond it, first opens are
/// refused until some are forgotten.
pub const MAX_REMEMBERED: usize = 65_536;

/// What a ticket is good for (the `tkt` claim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketScope {
    /// Tells the first open of this ticket from a second.
    pub id: Uuid,
    /// The group of the stream, as in its path.
    pub group: String,
    /// The address that asked for it.
    pub ip: IpAddr,
    /// The first open must come by then (Unix seconds).
    pub open_by: u64,
}

/// Why a ticket did not open a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("a token, not a ticket: send it in `Authorization: Bearer`")]
    NotATicket,
    #[error("the ticket is for another stream or address")]
    OtherStream,
    #[error("the ticket was used: ask for another (a reconnect names its Last-Event-ID)")]
    Used,
    #[error("the ticket was not used in time: ask for another")]
    Late,
    #[error("this node has opened too many tickets just now; try again shortly")]
    Busy,
}

/// The tickets this node has opened, until they could no longer open.
#[derive(Debug, Default)]
pub struct Tickets {
    opened: Mutex<HashMap<Uuid, u64>>,
}

impl Tickets {
    /// Checks that `scope`'s ticket is used for `group` from `ip`, and,
    /// when it opens a stream afresh (`resuming` is false), that it is the
    /// first open, in time.
    pub fn admit(
        &self,
        scope: &TicketScope,
        group: &str,
        ip: IpAddr,
        resuming: bool,
        now: u64,
    ) -> Result<(), TicketError> {
        if scope.group != group || scope.ip != ip {
            return Err(TicketError::OtherStream);
        }
        if resuming {
            return Ok(());
        }
        if now > scope.open_by {
            return Err(TicketError::Late);
        }
        let mut opened = self.opened.lock().expect("tickets lock");
        if opened.len() >= MAX_REMEMBERED {
            opened.retain(|_, open_by| *open_by >= now);
        }
        if opened.len() >= MAX_REMEMBERED {
            return Err(TicketError::Busy);
        }
        match opened.insert(scope.id, scope.open_by) {
            Some(_) => Err(TicketError::Used),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn scope() -> TicketScope {
        TicketScope {
            id: Uuid::new_v4(),
            group: "lobby".into(),
            ip: [10, 0, 0, 1].into(),
            open_by: NOW + OPEN_WITHIN_SECONDS,
        }
    }

    #[test]
    fn a_ticket_opens_its_stream_once_in_time_and_then_only_resumes() {
        let (tickets, scope, ip) = (Tickets::default(), scope(), [10, 0, 0, 1].into());
        assert_eq!(tickets.admit(&scope, "lobby", ip, false, NOW + OPEN_WITHIN_SECONDS), Ok(()));
        assert_eq!(tickets.admit(&scope, "lobby", ip, false, NOW + 1), Err(TicketError::Used));
        assert_eq!(tickets.admit(&scope, "lobby", ip, true, NOW + 600), Ok(()), "the browser's reconnect");
        let late = self::scope();
        assert_eq!(tickets.admit(&late, "lobby", ip, false, NOW + OPEN_WITHIN_SECONDS + 1), Err(TicketError::Late));
    }

    #[test]
    fn a_ticket_is_for_its_group_and_address_alone() {
        let (tickets, scope) = (Tickets::default(), scope());
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(tickets.admit(&scope, "elsewhere", ip, false, NOW), Err(TicketError::OtherStream));
        assert_eq!(tickets.admit(&scope, "lobby", [10, 0, 0, 2].into(), true, NOW), Err(TicketError::OtherStream));
        assert_eq!(tickets.admit(&scope, "lobby", ip, false, NOW), Ok(()), "neither refusal used it");
    }

    #[test]
    fn a_node_remembers_a_bounded_number_of_opened_tickets() {
        let (tickets, ip) = (Tickets::default(), [10, 0, 0, 1].into());
        for _ in 0..MAX_REMEMBERED {
            assert_eq!(tickets.admit(&scope(), "lobby", ip, false, NOW), Ok(()));
        }
        assert_eq!(tickets.admit(&scope(), "lobby", ip, false, NOW), Err(TicketError::Busy));
        // Once they can no longer open, they are forgotten.
        let later = TicketScope { open_by: NOW + 2 * OPEN_WITHIN_SECONDS, ..scope() };
        assert_eq!(tickets.admit(&later, "lobby", ip, false, NOW + OPEN_WITHIN_SECONDS + 1), Ok(()));
        assert_eq!(tickets.opened.lock().unwrap().len(), 1);
    }
}
