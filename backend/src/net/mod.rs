//! The socket layer: accepts TCP connections and serves HTTP/1.1 on each
//! with hyper, under bounds that warp's own server does not set.
//!
//! - A timer bounds the wait for every request head (`--handshake-timeout`),
//!   from accept on, so a socket that never sends a byte, dribbles a head,
//!   or idles between keep-alive requests is closed; a head over
//!   [`MAX_HEAD_BYTES`] gets `431`. A request (its body included) must be
//!   answered within the same time, or gets `408` (a long poll of the HTTP
//!   fallback within `--long-poll-timeout` more).
//! - [`admission`] caps sockets in total and per address, and how often an
//!   address may connect; a socket past a cap is answered `503` or `429`
//!   with `Retry-After`, or closed at once when not even that fits. The
//!   accept loop never sleeps on a full table.
//! - [`client_ip`] says whose request it is (`--trusted-proxies`).
//! - A response must make progress: a write the client has not taken for
//!   the same `--handshake-timeout` ends the connection
//!   ([`write_deadline`]); an upgraded WebSocket takes its socket back out
//!   of that timer ([`take_socket`]).
//! - HTTP/2 is not spoken (no h2c): nothing here needs it.
//!
//! Each request carries a [`Remote`] extension: the socket's address and
//! its admission ticket, which an upgraded WebSocket keeps for its life.

pub mod admission;
pub mod client_ip;
mod write_deadline;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use warp::reply::Response;
use warp::Reply;

use admission::{Admission, Decision, Refusal, Ticket};
use bytes::Bytes;
use hyper::upgrade::Upgraded;
use write_deadline::WriteDeadline;

use crate::http_error::HttpError;
use crate::metrics::{path_class, Metrics, SocketRefusal};

/// Largest request head (request line and headers); larger gets `431`.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// hyper's read buffer may grow to this (it must hold one head).
const MAX_BUFFER_BYTES: usize = 32 * 1024;

/// What every HTTP connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// From accept (or the last response) to a complete request head, and
    /// from a head to its response.
    pub handshake_timeout: Duration,
    /// How long an open request may still take once the server stops.
    pub close_grace: Duration,
    /// How long a long poll waits before it answers: such a request (the
    /// HTTP fallback's events, `/api/events/…`) may take this long on top
    /// of the handshake timeout.
    pub long_poll: Duration,
}

/// The HTTP fallback's event path: its long polls take their own time.
const EVENTS_PATH: &str = "/api/events/";

/// Where a request came from: put in every request's extensions.
#[derive(Debug, Clone)]
pub struct Remote {
    pub addr: SocketAddr,
    /// The socket's place in the admission counts.
    pub ticket: Arc<Ticket>,
}

/// A WebSocket's places in the admission counts, held while it is open:
/// its socket's, and behind a trusted proxy, its client address's.
#[derive(Debug, Default)]
pub struct Place {
    pub socket: Option<Arc<Ticket>>,
    pub forwarded: Option<Ticket>,
}

/// The socket under each HTTP connection, as hyper holds it.
type HttpIo = TokioIo<WriteDeadline<TcpStream>>;

/// The TCP socket of an upgraded connection, out of hyper and out of the
/// HTTP write deadline, with what the client had already sent past its
/// request; or the upgrade back, should it not be one of this server's.
pub fn take_socket(upgraded: Upgraded) -> Result<(TcpStream, Bytes), Upgraded> {
    let parts = upgraded.downcast::<HttpIo>()?;
    Ok((parts.io.into_inner().into_inner(), parts.read_buf))
}

/// Accepts and serves until `shutdown`; then stops accepting, lets open
/// requests finish within `close_grace`, and returns once every HTTP
/// connection is closed (upgraded WebSockets are their own tasks).
pub async fn serve<S, F>(
    listener: TcpListener,
    service: S,
    admission: Arc<Admission>,
    trusted: Arc<client_ip::TrustedProxies>,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) where
    S: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                on_accept_error(err).await;
                continue;
            }
        };
        metrics.accepted();
        let counted = !trusted.trusts(addr.ip());
        let (refusal, ticket) = match admission.admit(addr.ip(), counted) {
            Decision::Close => {
                metrics.refused(SocketRefusal::Dropped);
                continue;
            }
            Decision::Serve(ticket) => (None, ticket),
            Decision::Refuse(refusal, ticket) => {
                metrics.refused(refusal.counted_as());
                (Some(refusal), ticket)
            }
        };
        let remote = Remote { addr, ticket: Arc::new(ticket) };
        let connection = Connection { remote, refusal, limits, metrics: metrics.clone() };
        tasks.spawn(connection.serve(stream, service.clone(), shutdown.clone()));
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

/// One socket's HTTP connection, before it is served.
struct Connection {
    remote: Remote,
    /// Why it is refused, if it is: its one answer says so.
    refusal: Option<Refusal>,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
}

impl Connection {
    /// Serves one socket: its requests, or only the refusal.
    async fn serve<S, F>(self, stream: TcpStream, service: S, shutdown: CancellationToken)
    where
        S: Fn(http::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let Self { remote, refusal, limits, metrics } = self;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.handshake_timeout)
            .max_header_size(MAX_HEAD_BYTES)
            .max_buf_size(MAX_BUFFER_BYTES)
            .keep_alive(refusal.is_none());
        let handle = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(remote.clone());
            let path = path_class(request.uri().path());
            let within = if request.uri().path().starts_with(EVENTS_PATH) {
                limits.handshake_timeout + limits.long_poll
            } else {
                limits.handshake_timeout
            };
            let answer = (refusal.is_none()).then(|| service(request));
            let metrics = metrics.clone();
            async move {
                let response = match answer {
                    // The answer to a refused socket's request; the socket closes after it.
                    None => refusal.unwrap_or(Refusal::Full).response(),
                    Some(answer) => match tokio::time::timeout(within, answer).await {
                        Ok(Ok(response)) => response,
                        Err(_) => plain(StatusCode::REQUEST_TIMEOUT, "the request took too long to arrive\n"),
                    },
                };
                metrics.answered(path, response.status().as_u16());
                Ok::<_, Infallible>(response)
            }
        });
        let io: HttpIo = TokioIo::new(WriteDeadline::new(stream, limits.handshake_timeout));
        let connection = builder.serve_connection(io, handle).with_upgrades();
        let mut connection = pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limits.close_grace, connection).await;
            }
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    warp::reply::with_status(text.to_owned(), status).into_response()
}

/// Errors of `accept` are about one connection (it reset before it was
/// taken) or about the process (out of file descriptors). The caps keep
/// sockets below the descriptor limit, so the second means something else
/// holds them: wait a moment rather than spin, and say so.
async fn on_accept_error(err: std::io::Error) {
    use std::io::ErrorKind;
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_WARNED_SECOND: AtomicU64 = AtomicU64::new(0);
    if matches!(err.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted) {
        return;
    }
    // At most one warning a second, however fast accept fails.
    let second = crate::clock::unix_millis() / 1000;
    if LAST_WARNED_SECOND.swap(second, Ordering::Relaxed) != second {
        tracing::warn!(%err, "cannot accept a connection");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The process's limit on open files.
pub fn fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Raises the process's limit on open files to its hard limit (the usual
/// soft limit, 1024, is far below what a chat server holds); returns the
/// limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// How many sockets may be served: `configured` (or by default as many as
/// the descriptor limit allows), never more than the limit allows, after a
/// reserve for the database, the listener, served files and the runtime,
/// and room for the sockets that are only told they are refused.
pub fn max_connections(configured: Option<usize>) -> usize {
    let limit = fd_limit().unwrap_or(1024) as usize;
    let budget = limit.saturating_sub(64 + limit / 32 + admission::REFUSALS_TOTAL).max(16);
    match configured {
        Some(configured) if configured > budget => {
            tracing::warn!(
                configured,
                budget,
                limit,
                "--max-connections is above what the open-file limit allows; using the budget"
            );
            budget
        }
        Some(configured) => configured,
        None => budget,
    }
}
