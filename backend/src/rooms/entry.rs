//! One room of an identity's list as the store has it: the group's latest
//! message, the identity's cursor, its unread count (exact up to
//! [`MAX_UNREAD`]), and for a direct message group the other participant.
//! Read when the list is sent and when a cursor moves, never per delivery.

use roomcast_shared::limits::{HISTORY_PAGE, MAX_UNREAD};
use roomcast_shared::{ClientId, GroupName, LastMessage, RoomEntry};

use crate::history::unread::unread;
use crate::history::{Cursor, HistoryError, Limit, Range, Store};

/// `sub`'s entry for `group`, whose cursor is `cursor` (set at
/// `updated_ms`).
pub fn entry(
    store: &dyn Store,
    sub: ClientId,
    group: &GroupName,
    cursor: Option<&Cursor>,
    updated_ms: u64,
) -> Result<RoomEntry, HistoryError> {
    let latest = store.read(group, Range::LATEST, Limit::messages(1))?;
    let epoch = latest.head.epoch;
    let read = cursor.filter(|cursor| cursor.epoch == epoch && !epoch.is_empty()).map_or(0, |cursor| cursor.seq);
    let last = latest.messages.last().map(|message| LastMessage {
        seq: message.seq,
        from: message.from.clone(),
        preview: LastMessage::preview_of(&message.text),
        ts: message.ts,
    });
    let unread = if last.as_ref().is_some_and(|last| last.seq > read) {
        unread(store, group, cursor, sub, MAX_UNREAD)?
    } else {
        0
    };
    let with = if group.is_direct() { other_participant(store, sub, group)? } else { None };
    let active_ms = last.as_ref().map_or(updated_ms, |last| last.ts.max(updated_ms));
    Ok(RoomEntry { group: group.clone(), with, epoch, read, unread, last, active_ms })
}

/// `sub`'s rooms, newest activity first: one entry per read cursor (the
/// store keeps at most 200). `watch` is called for each before it is read,
/// so that what comes after the read reaches the stream live.
pub fn list(store: &dyn Store, sub: ClientId, watch: &dyn Fn(&GroupName)) -> Result<Vec<RoomEntry>, HistoryError> {
    let mut rooms = Vec::new();
    for listed in store.cursors(sub)? {
        watch(&listed.group);
        rooms.push(entry(store, sub, &listed.group, Some(&listed.cursor), listed.updated_ms)?);
    }
    rooms.sort_by(|a, b| b.active_ms.cmp(&a.active_ms).then_with(|| a.group.cmp(&b.group)));
    Ok(rooms)
}

/// The other participant of the direct message group `group`: whoever of
/// its latest page of messages is not `sub` (the server keeps no list of
/// participants; the name is their hash). `None` while only `sub` wrote.
fn other_participant(store: &dyn Store, sub: ClientId, group: &GroupName) -> Result<Option<ClientId>, HistoryError> {
    let page = store.read(group, Range::LATEST, Limit::messages(HISTORY_PAGE))?;
    Ok(page.messages.iter().rev().map(|message| message.from.client_id).find(|from| *from != sub))
}
