//! What the driver waits on, polled by hand in one place: the socket
//! opening, its frames, a renewal's answer, a command, a timer.

use std::future::poll_fn;
use std::task::Poll;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;

use crate::net::command::Command;
use crate::session::{Answer, Identity};

pub enum Event {
    Opened,
    Socket(Option<Result<Message, WebSocketError>>),
    Command(Option<Command>),
    /// A renewal of the connection's token was answered.
    Renewed(Answer, Identity),
    Timer,
}

/// A renewal under way: what the answer means, and the identity to use.
pub type Renewing = Option<LocalBoxFuture<'static, (Answer, Identity)>>;

/// A timer and the time it fires at.
pub type Timer = Option<(f64, TimeoutFuture)>;

/// Makes `timer` fire at `due_ms` or earlier. A timer that already fires no
/// later is kept: firing early only means checking again, and not setting a
/// new timeout per message (the heartbeat's moves with each one) keeps
/// `setTimeout`/`clearTimeout` off the per-message path.
///
/// Delays are capped at `setTimeout`'s largest, 2^31 − 1 ms (24.8 days): a
/// longer one fires at once in browsers, and a token renewal can be weeks
/// away.
pub fn arm(timer: &mut Timer, due_ms: Option<f64>) {
    match (timer.as_ref(), due_ms) {
        (Some((at, _)), Some(due)) if *at <= due => {}
        (_, Some(due)) => {
            let delay = (due - now_ms()).ceil().clamp(0.0, f64::from(i32::MAX)) as u32;
            *timer = Some((due, TimeoutFuture::new(delay)));
        }
        (_, None) => *timer = None,
    }
}

/// The socket the driver waits on, if any.
pub enum Waited<'a> {
    /// No socket: only commands, a renewal and the timer.
    Nothing,
    /// A socket still connecting: its opening, then its events.
    Opening(&'a mut WebSocket),
    /// A socket that opened: its events.
    Open(&'a mut WebSocket),
}

/// The next thing that happens: the socket opening (while
/// [`Waited::Opening`]), a socket event, a renewal's answer (which ends
/// `renewing`), a command, or `timer` firing (which disarms it).
pub async fn next_event(
    commands: &mut UnboundedReceiver<Command>,
    mut socket: Waited<'_>,
    renewing: &mut Renewing,
    timer: &mut Timer,
) -> Event {
    poll_fn(|cx| {
        let (ws, await_open) = match &mut socket {
            Waited::Nothing => (None, false),
            Waited::Opening(ws) => (Some(&mut **ws), true),
            Waited::Open(ws) => (Some(&mut **ws), false),
        };
        if let Some(ws) = ws {
            // The sink becomes ready when the socket leaves CONNECTING.
            if await_open && ws.poll_ready_unpin(cx).is_ready() {
                return Poll::Ready(Event::Opened);
            }
            if let Poll::Ready(item) = ws.poll_next_unpin(cx) {
                return Poll::Ready(Event::Socket(item));
            }
        }
        if let Some(future) = renewing.as_mut() {
            if let Poll::Ready((answer, identity)) = future.poll_unpin(cx) {
                *renewing = None;
                return Poll::Ready(Event::Renewed(answer, identity));
            }
        }
        if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
            return Poll::Ready(Event::Command(command));
        }
        if let Some((_, future)) = timer.as_mut() {
            if future.poll_unpin(cx).is_ready() {
                *timer = None;
                return Poll::Ready(Event::Timer);
            }
        }
        Poll::Pending
    })
    .await
}

/// The browser's clock, in Unix milliseconds.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}
