//! What this node does with what the nodes say: the one handler a node
//! attaches to its signals ([`Backend::on_signal`](crate::backend::Backend::on_signal),
//! whose relay takes one), sending each [`Control`] to the part that acts
//! on it, one arm per variant. A new variant gets its arm here, and the
//! compiler finds this match.

use std::sync::Arc;

use crate::revoke;
use crate::signals::{Control, Handler, Signal};
use crate::typing;

/// The node's handler: revocations to `revocations`, typing to `typing`.
pub fn handler(revocations: revoke::Heard, typing: typing::Fanout) -> Handler {
    Arc::new(move |signal| {
        match signal {
            // Only revocations are stored; typing has nothing to catch up.
            Signal::Listening => revocations.listening()?,
            Signal::Control(Control::Revoke { sub, issued_before }) => revocations.revoked(sub, issued_before),
            Signal::Control(Control::Typing { group, from }) => typing.heard(&group, from),
        }
        Ok(())
    })
}
