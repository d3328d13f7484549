//! What this node does with what the nodes say: the one handler a node
//! attaches to its signals ([`Backend::on_signal`](crate::backend::Backend::on_signal),
//! whose relay takes one), sending each [`Control`] to the part that acts
//! on it, one arm per variant. A new variant gets its arm here, and the
//! compiler finds this match.

use std::sync::Arc;

use crate::admin::cluster::Cluster;
use crate::cursors;
use crate::identity_control;
use crate::presence;
use crate::rooms;
use crate::signals::{Control, Handler, Signal};
use crate::typing;

/// The node's handler: revocations, disconnects and bans to `identities`,
/// typing to `typing`,
/// read cursors to `cursors`, presence to `presence`, rooms lists to
/// `rooms`, the admin surfaces' questions and answers to `cluster`.
pub fn handler(
    identities: identity_control::Heard,
    typing: typing::Fanout,
    cursors: cursors::Fanout,
    presence: presence::Heard,
    rooms: rooms::Heard,
    cluster: Arc<Cluster>,
) -> Handler {
    Arc::new(move |signal| {
        match signal {
            // Revocations, bans and presence are stored, and read again; typing
            // has nothing to catch up, and a cursor comes with the next
            // `welcome`.
            Signal::Listening => {
                presence.listening();
                identities.listening()?;
            }
            Signal::Control(Control::Identity(sanction)) => identities.sanction(sanction),
            Signal::Control(Control::Typing { group, from }) => typing.heard(&group, from),
            Signal::Control(Control::Cursor { sub, group, epoch, seq, seen }) => {
                cursors.heard(sub, &group, epoch, seq, seen);
            }
            Signal::Control(Control::Presence { node, parts }) => presence.heard(node, parts),
            Signal::Control(Control::Room { sub, room }) => rooms.room(sub, room),
            Signal::Control(Control::Forgotten { sub, group }) => rooms.forgotten(sub, group),
            Signal::Control(Control::Ask { query, question }) => cluster.heard_ask(query, question),
            Signal::Control(Control::Answer { query, node, answer }) => cluster.heard_answer(query, node, answer),
        }
        Ok(())
    })
}
