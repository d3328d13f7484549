//! Several tabs, one browser storage: each tab keeps its outbox for a room
//! under a key of its own, so that no tab overwrites another's unsent
//! messages, and a tab adopts the outbox of a tab that is gone.
//!
//! A tab is gone when its Web Lock is free (`navigator.locks`: a tab holds
//! the lock named after its outbox key while its room view is open, and the
//! browser releases it when the tab closes or crashes). Where the browser
//! has no Web Locks (pages served over plain HTTP from another host), an
//! outbox whose tab has not refreshed it for [`STALE_AFTER_MS`] counts as
//! gone. Adopting an outbox whose tab is in fact alive only makes both tabs
//! send the same ids, which the server stores once.

use roomcast_shared::GroupName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::outbox::Saved;

const PREFIX: &str = "roomcast.outbox.";

/// How often a tab without Web Locks refreshes its outbox's `seen_ms`.
pub const REFRESH_EVERY_MS: f64 = 15_000.0;

/// Without Web Locks: an outbox not refreshed for this long is adopted.
/// Background tabs may run their timers only once a minute.
pub const STALE_AFTER_MS: f64 = 75_000.0;

/// How long a tab's lock that was let go must stay free before its outbox
/// is adopted: a reloading tab lets go of its lock and takes it back within
/// this, and keeps its own messages.
pub const RELOAD_GRACE_MS: f64 = 3_000.0;

/// What follows once another tab's lock was granted to this one (so that
/// tab let go of it), released at once, and [`RELOAD_GRACE_MS`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterGrace {
    /// Its tab took the lock back (a reload): watch it again.
    WatchAgain,
    /// Still free: its tab is gone; adopt its outbox.
    Adopt,
}

/// What follows the grace; `taken_back`: someone holds the lock again.
pub fn after_grace(taken_back: bool) -> AfterGrace {
    if taken_back {
        AfterGrace::WatchAgain
    } else {
        AfterGrace::Adopt
    }
}

/// One tab's outbox for one room, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TabOutbox {
    /// When its tab last wrote it (Unix milliseconds).
    pub seen_ms: f64,
    pub items: Vec<Saved>,
}

/// Whose outbox a storage key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Tab(Uuid),
    /// The single outbox per room of earlier versions.
    Shared,
}

/// The storage key of `owner`'s outbox for `group` (also the name of the
/// Web Lock its tab holds).
pub fn outbox_key(group: &GroupName, owner: Owner) -> String {
    match owner {
        Owner::Tab(tab) => format!("{PREFIX}{group}.{tab}"),
        Owner::Shared => format!("{PREFIX}{group}"),
    }
}

/// The owner of `key` if it is an outbox of `group`.
pub fn owner_of(key: &str, group: &GroupName) -> Option<Owner> {
    let rest = key.strip_prefix(PREFIX)?;
    if rest == group.as_str() {
        return Some(Owner::Shared);
    }
    let (key_group, tab) = rest.rsplit_once('.')?;
    (key_group == group.as_str()).then_some(())?;
    tab.parse().ok().map(Owner::Tab)
}

/// Whether an outbox found in storage, not this tab's, is to be adopted
/// now, judged by its age (for browsers without Web Locks).
pub fn is_stale(outbox: &TabOutbox, now_ms: f64) -> bool {
    now_ms - outbox.seen_ms >= STALE_AFTER_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupName {
        "lobby".parse().unwrap()
    }

    #[test]
    fn keys_name_their_room_and_tab() {
        let tab = Uuid::from_u128(7);
        let key = outbox_key(&group(), Owner::Tab(tab));
        assert_eq!(key, "roomcast.outbox.lobby.00000000-0000-0000-0000-000000000007");
        assert_eq!(owner_of(&key, &group()), Some(Owner::Tab(tab)));
        assert_eq!(owner_of("roomcast.outbox.lobby", &group()), Some(Owner::Shared));
    }

    #[test]
    fn other_rooms_and_other_keys_are_not_ours() {
        let other: GroupName = "lobby2".parse().unwrap();
        let key = outbox_key(&other, Owner::Tab(Uuid::nil()));
        assert_eq!(owner_of(&key, &group()), None);
        assert_eq!(owner_of("roomcast.outbox.lobby2", &group()), None);
        assert_eq!(owner_of("roomcast.outbox.lobby.not-a-uuid", &group()), None);
        assert_eq!(owner_of("roomcast.name", &group()), None);
    }

    #[test]
    fn a_reloading_tab_keeps_its_outbox_and_a_closed_ones_is_adopted() {
        assert_eq!(after_grace(true), AfterGrace::WatchAgain);
        assert_eq!(after_grace(false), AfterGrace::Adopt);
        assert_eq!(RELOAD_GRACE_MS, 3_000.0, "the browser tests reload within it");
    }

    #[test]
    fn an_outbox_is_stale_once_its_tab_stopped_refreshing_it() {
        let outbox = TabOutbox { seen_ms: 1_000.0, items: Vec::new() };
        assert!(!is_stale(&outbox, 1_000.0 + REFRESH_EVERY_MS * 4.0));
        assert!(is_stale(&outbox, 1_000.0 + STALE_AFTER_MS));
    }
}
