//! What the driver waits on, polled by hand in one place: the socket
//! opening, its frames, a renewal's answer, a command, a timer.

use std::future::poll_fn;
use std::task::Poll;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo_timers::future::TimeoutFuture;

use crate::net::carrier::Carrier;
use crate::net::command::Command;
use crate::net::http::Frame;
use crate::net::socket::Socket;
use crate::session::{Answer, Identity};

pub enum Event {
    Opened,
    Socket(Frame),
    /// A WebSocket probe (tried while on HTTP) opened (`true`) or failed.
    Probe(bool),
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
    Opening(&'a mut Carrier),
    /// A socket that opened: its events.
    Open(&'a mut Carrier),
}

/// The next thing that happens: the socket opening (while
/// [`Waited::Opening`]), a socket event, a renewal's answer (which ends
/// `renewing`), a command, or `timer` firing (which disarms it).
pub async fn next_event(
    commands: &mut UnboundedReceiver<Command>,
    mut socket: Waited<'_>,
    probe: &mut Option<Socket>,
    renewing: &mut Renewing,
    timer: &mut Timer,
) -> Event {
    poll_fn(|cx| {
        let (carrier, await_open) = match &mut socket {
            Waited::Nothing => (None, false),
            Waited::Opening(carrier) => (Some(&mut **carrier), true),
            Waited::Open(carrier) => (Some(&mut **carrier), false),
        };
        if let Some(carrier) = carrier {
            if await_open && carrier.poll_opened(cx).is_ready() {
                return Poll::Ready(Event::Opened);
            }
            if let Poll::Ready(item) = carrier.poll_next(cx) {
                return Poll::Ready(Event::Socket(item));
            }
        }
        if let Some(socket) = probe.as_mut() {
            // A probe only opens or fails: its frames are not read.
            if socket.stream().poll_ready_unpin(cx).is_ready() {
                let opened = socket.is_open();
                socket.close("probe");
                *probe = None;
                return Poll::Ready(Event::Probe(opened));
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
