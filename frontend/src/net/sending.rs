//! This tab's outbox against storage, the view and the socket: what the
//! user typed is shown at once, kept under this tab's key (a reload loses
//! nothing), and written one message at a time. What becomes of each
//! message is decided by [`Outbox`].

use roomcast_shared::{ClientCommand, ErrorCode, GroupName, MessageId};
use uuid::Uuid;

use crate::net::carrier::Carrier;
use crate::net::command::Command;
use crate::net::events::now_ms;
use crate::net::view::View;
use crate::session::{Outbox, Owner, Reached};
use crate::state::Action;
use crate::storage;

pub struct Sending {
    group: GroupName,
    tab: Uuid,
    outbox: Outbox,
    /// The server's message size limit, as last told (kept for offline).
    limit: Option<usize>,
    view: View,
}

impl Sending {
    /// The outbox tab `tab` left for `group` (a reload keeps its tab id).
    pub fn restore(group: GroupName, tab: Uuid, view: View) -> Self {
        let saved = storage::read_outbox(&group, Owner::Tab(tab)).map(|outbox| outbox.items).unwrap_or_default();
        Self { outbox: Outbox::restore(saved), limit: storage::max_message_bytes(), group, tab, view }
    }

    /// The outbox commands, whatever the connection is doing; what they
    /// queue goes out with the next [`send_next`](Self::send_next).
    pub fn command(&mut self, command: Command) {
        let changed = match command {
            Command::Send(text) => {
                // Time-ordered (v7): the server's id index then grows at
                // its end instead of a random page per message.
                self.outbox.push(MessageId(Uuid::now_v7()), text);
                true
            }
            // A retried message is checked against the limit again: one that
            // is still too long fails again at once instead of being sent.
            Command::Retry(id) => {
                let retried = self.outbox.retry(id);
                self.fail_oversized();
                retried
            }
            Command::Delete(id) => self.outbox.delete(id),
            Command::Adopt { owner, items } => {
                if self.outbox.adopt(items) {
                    self.publish();
                }
                // Ours now (saved under this tab's key): theirs can go.
                storage::remove_outbox(&self.group, owner);
                false
            }
            // Nothing changed for the view: only the stamp in storage.
            Command::Refresh => {
                self.save();
                false
            }
            // Typing while no connection is open goes nowhere; the others
            // are the link's and the reading's.
            Command::Close
            | Command::Reconnect
            | Command::Online
            | Command::Offline
            | Command::Typing { .. }
            | Command::Seen(_) => false,
        };
        if changed {
            self.publish();
        }
    }

    /// `welcome` told the server's message size limit.
    pub fn limit_told(&mut self, limit: usize) {
        storage::remember_max_message_bytes(limit);
        self.limit = Some(limit);
        self.view.act(Action::Limit(limit));
        if self.fail_oversized() {
            self.publish();
        }
    }

    /// Fails every unsent message over the server's last known limit.
    fn fail_oversized(&mut self) -> bool {
        self.limit.is_some_and(|limit| self.outbox.fail_oversized(limit, ClientCommand::send_frame_len))
    }

    /// Message `id` was stored (its echo, or its `ack`).
    pub fn acknowledged(&mut self, id: MessageId) {
        if self.outbox.acknowledge(id) {
            self.publish();
        }
    }

    /// Whether `id` is a message of this outbox.
    pub fn holds(&self, id: MessageId) -> bool {
        self.outbox.items().iter().any(|pending| pending.id == id)
    }

    /// The server refused message `id` with `code`, saying `message`.
    pub fn refused(&mut self, id: MessageId, code: ErrorCode, message: &str) {
        self.outbox.refused(id, code.is_retryable(), message, now_ms(), js_sys::Math::random());
        self.publish();
    }

    /// When a refused message is due to be sent again.
    pub fn next_retry_ms(&self) -> Option<f64> {
        self.outbox.next_retry_ms()
    }

    /// Writes the next message of the outbox, if one may go now.
    pub async fn send_next(&mut self, socket: &mut Carrier) {
        if let Some((id, text)) = self.outbox.next_to_send(now_ms()) {
            // A failed write means the socket is closing; the close puts the
            // message back in the queue.
            socket.send(&ClientCommand::Send { id, text }).await;
            self.publish();
        }
    }

    /// The socket closed with `code`, having `reached` as far.
    pub fn closed(&mut self, reached: Reached, code: u16) {
        self.outbox.closed(reached, code);
        self.publish();
    }

    /// The socket was let go without waiting for its close.
    pub fn connection_lost(&mut self) {
        self.outbox.connection_lost();
        self.publish();
    }

    /// Shows the outbox and keeps it in storage under this tab's key, so
    /// that a reload does not lose what was typed.
    pub fn publish(&self) {
        self.save();
        self.view.act(Action::Outbox(self.outbox.items().to_vec()));
    }

    /// Keeps the outbox in storage, stamped now (other tabs without Web
    /// Locks judge by the stamp whether this tab is alive).
    fn save(&self) {
        storage::save_outbox(&self.group, self.tab, self.outbox.saved(), now_ms());
    }
}
