//! Unread counts, from any [`Store`] through its `read`: the messages of a
//! group after an identity's read cursor that it did not send itself,
//! exact up to a cap. Computed when a cursor or the room list changes, then
//! kept by whoever counts deliveries (never a scan per delivery).

use roomcast_shared::{ClientId, GroupName};

use super::store::{Cursor, HistoryError, Limit, Range, Store};

/// What one read of the count takes: pages bounded like a replay's, so a
/// count holds one page at a time.
const PAGE: Limit = Limit { messages: 200, bytes: 256 * 1024 };

/// How many messages of `group` after `cursor` were not sent by `sub`, up
/// to `cap`. A cursor of another epoch than the group's (or none) counts
/// every retained message; so does one below what retention kept (the
/// numbers between are gone). Reads at most `cap` messages plus `sub`'s
/// own after the cursor, a page at a time.
pub fn unread(
    store: &dyn Store,
    group: &GroupName,
    cursor: Option<&Cursor>,
    sub: ClientId,
    cap: u64,
) -> Result<u64, HistoryError> {
    let mut epoch = store.head(group)?.epoch;
    let mut after = cursor.filter(|cursor| cursor.epoch == epoch).map_or(0, |cursor| cursor.seq);
    let mut count = 0;
    loop {
        let slice = store.read(group, Range::After(after), PAGE)?;
        if slice.head.epoch != epoch {
            // The group started over between two reads: no cursor is of
            // its new epoch.
            (epoch, after, count) = (slice.head.epoch, 0, 0);
            continue;
        }
        let Some(last) = slice.messages.last().map(|last| last.seq) else { return Ok(count) };
        count += slice.messages.iter().filter(|message| message.from.client_id != sub).count() as u64;
        if count >= cap {
            return Ok(cap);
        }
        after = last;
    }
}
