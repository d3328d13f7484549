//! Which transport a room's connection uses: WebSocket, else the HTTP
//! event stream (Server-Sent Events read with `fetch`), else long polling
//! (docs/PROTOCOL.md, "Over plain HTTP").
//!
//! - WebSocket first. After [`TransportConfig::fail_opens`] WebSocket
//!   attempts in a row that never opened, or once
//!   [`TransportConfig::open_within_ms`] went by since the first of them
//!   without one opening, the next attempt uses the event stream.
//! - A stream whose first event (the server's 2 KiB padding comment comes
//!   first) has not arrived within [`TransportConfig::first_event_within_ms`]
//!   is held back by a buffering proxy: the next attempt long-polls.
//! - While on HTTP, WebSocket is tried again every
//!   [`TransportConfig::probe_every_ms`] (a probe socket beside the HTTP
//!   connection): once one opens, the HTTP connection is let go and the next
//!   attempt is a WebSocket, resuming where the HTTP one was (the outbox and
//!   the resume cursor are the same for every transport, so nothing is lost
//!   or doubled). A probe that fails leaves everything as it is.
//!
//! Plain Rust: times are passed in, in milliseconds.

/// How a connection reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    WebSocket,
    /// `GET /api/events/…` read as a stream, commands by `POST`.
    Stream,
    /// The same `GET` with `poll=1`, one answer at a time.
    Poll,
}

impl Transport {
    /// What the status bar adds to "connected": nothing for a WebSocket.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Self::WebSocket => None,
            Self::Stream => Some("HTTP stream"),
            Self::Poll => Some("long polling"),
        }
    }

    /// A stable machine-readable name (the UI tests read it).
    pub fn key(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Stream => "stream",
            Self::Poll => "poll",
        }
    }

    pub fn is_http(self) -> bool {
        !matches!(self, Self::WebSocket)
    }

    /// What the timeline says when the connections move to this transport.
    pub fn switched_line(self) -> &'static str {
        match self {
            Self::WebSocket => "trying WebSocket again",
            Self::Stream => "WebSocket does not get through: using an HTTP stream",
            Self::Poll => "the HTTP stream is held back: using long polling",
        }
    }

    /// What the status bar says once connected this way.
    pub fn connected_line(self) -> String {
        match self.label() {
            Some(label) => format!("connected ({label})"),
            None => "connected".to_owned(),
        }
    }
}

/// The numbers of the fallback; each can be shortened by the tests (the
/// browser tests store theirs, as JSON, under `roomcast.transport`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct TransportConfig {
    /// WebSocket attempts in a row that never opened before falling back.
    pub fail_opens: u32,
    /// Time since the first of them without an open before falling back.
    pub open_within_ms: f64,
    /// A stream with no first event within this long means long polling.
    pub first_event_within_ms: f64,
    /// How often WebSocket is tried again while on HTTP.
    pub probe_every_ms: f64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self { fail_opens: 3, open_within_ms: 10_000.0, first_event_within_ms: 5_000.0, probe_every_ms: 300_000.0 }
    }
}

/// An HTTP transport in use, remembered by the browser (`localStorage`):
/// the next room view, another tab and the rooms stream start on it, rather
/// than failing three WebSocket opens again, and try WebSocket when the
/// probe is due.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InUse {
    pub transport: Transport,
    /// When WebSocket is tried again.
    pub probe_at_ms: f64,
}

/// The transport choice.
#[derive(Debug, Clone)]
pub struct Transports {
    config: TransportConfig,
    current: Transport,
    /// WebSocket attempts in a row that never opened.
    failed_opens: u32,
    /// When the first of them started.
    failing_since_ms: Option<f64>,
    /// When WebSocket is tried again (while on HTTP).
    probe_at_ms: Option<f64>,
}

impl Transports {
    pub fn new(config: TransportConfig) -> Self {
        Self { config, current: Transport::WebSocket, failed_opens: 0, failing_since_ms: None, probe_at_ms: None }
    }

    /// Starts on the HTTP transport `in_use` (a remembered one) if there
    /// is one, trying WebSocket when its probe is due (a period from
    /// `now_ms` at the latest).
    pub fn starting(config: TransportConfig, in_use: Option<InUse>, now_ms: f64) -> Self {
        let mut transports = Self::new(config);
        if let Some(in_use) = in_use.filter(|in_use| in_use.transport.is_http()) {
            transports.current = in_use.transport;
            transports.probe_at_ms = Some(in_use.probe_at_ms.min(now_ms + config.probe_every_ms));
        }
        transports
    }

    /// What to remember: the HTTP transport in use, or nothing on
    /// WebSocket.
    pub fn in_use(&self) -> Option<InUse> {
        let probe_at_ms = self.probe_at_ms.unwrap_or_default();
        self.current.is_http().then_some(InUse { transport: self.current, probe_at_ms })
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// The transport of the next attempt (and of the current connection).
    pub fn current(&self) -> Transport {
        self.current
    }

    /// A WebSocket attempt started at `started_ms` ended at `now_ms`
    /// without opening. Returns whether the next attempt falls back to HTTP.
    pub fn websocket_failed(&mut self, started_ms: f64, now_ms: f64) -> bool {
        if self.current != Transport::WebSocket {
            return false;
        }
        self.failed_opens += 1;
        let since = *self.failing_since_ms.get_or_insert(started_ms);
        let fall_back = self.failed_opens >= self.config.fail_opens || now_ms - since >= self.config.open_within_ms;
        if fall_back {
            self.fall_back(now_ms);
        }
        fall_back
    }

    /// The server says a WebSocket handshake of this browser reached it
    /// without `Upgrade` (a proxy strips it): the next attempt uses the
    /// event stream, whatever the count. Returns whether that is a move.
    pub fn upgrade_stripped(&mut self, now_ms: f64) -> bool {
        let on_websocket = self.current == Transport::WebSocket;
        if on_websocket {
            self.fall_back(now_ms);
        }
        on_websocket
    }

    fn fall_back(&mut self, now_ms: f64) {
        self.current = Transport::Stream;
        self.failed_opens = 0;
        self.failing_since_ms = None;
        self.probe_at_ms = Some(now_ms + self.config.probe_every_ms);
    }

    /// A WebSocket opened (a connection's or a probe's): WebSocket from
    /// now on. Returns whether that is a move back from HTTP (the HTTP
    /// connection is then let go, and the next attempt is a WebSocket).
    pub fn websocket_opened(&mut self) -> bool {
        let moved = self.current.is_http();
        self.current = Transport::WebSocket;
        self.failed_opens = 0;
        self.failing_since_ms = None;
        self.probe_at_ms = None;
        moved
    }

    /// The deadline of a stream started at `started_ms` for its first event
    /// (`None` unless the current transport is the stream).
    pub fn first_event_deadline_ms(&self, started_ms: f64) -> Option<f64> {
        (self.current == Transport::Stream).then_some(started_ms + self.config.first_event_within_ms)
    }

    /// The stream started at `started_ms` has had no event by `now_ms`.
    /// Returns whether that means a buffering proxy (the stream is then let
    /// go, and the next attempt long-polls).
    pub fn stream_silent(&mut self, started_ms: f64, now_ms: f64) -> bool {
        match self.first_event_deadline_ms(started_ms) {
            Some(deadline) if now_ms >= deadline => {
                self.current = Transport::Poll;
                true
            }
            _ => false,
        }
    }

    /// An HTTP attempt ended at `now_ms` without opening. Once a probe is
    /// due, the next attempt is a WebSocket again (HTTP may be what fails
    /// now); returns whether it is.
    pub fn http_failed(&mut self, now_ms: f64) -> bool {
        match self.probe_due_ms() {
            Some(at) if now_ms >= at => {
                self.websocket_opened();
                true
            }
            _ => false,
        }
    }

    /// When a WebSocket probe is due (only while on HTTP).
    pub fn probe_due_ms(&self) -> Option<f64> {
        self.probe_at_ms.filter(|_| self.current.is_http())
    }

    /// Whether a probe should start at `now_ms`; starting one moves the
    /// next probe a period on (so a probe that fails waits its turn).
    pub fn take_probe(&mut self, now_ms: f64) -> bool {
        match self.probe_due_ms() {
            Some(at) if now_ms >= at => {
                self.probe_at_ms = Some(now_ms + self.config.probe_every_ms);
                true
            }
            _ => false,
        }
    }
}

impl Default for Transports {
    fn default() -> Self {
        Self::new(TransportConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> TransportConfig {
        TransportConfig { fail_opens: 3, open_within_ms: 100.0, first_event_within_ms: 50.0, probe_every_ms: 1_000.0 }
    }

    #[test]
    fn the_production_numbers() {
        let config = TransportConfig::default();
        assert_eq!(config.fail_opens, 3);
        assert_eq!(config.open_within_ms, 10_000.0);
        assert_eq!(config.first_event_within_ms, 5_000.0);
        assert_eq!(config.probe_every_ms, 300_000.0);
    }

    #[test]
    fn websocket_first_and_the_stream_after_three_failed_opens() {
        let mut t = Transports::default();
        assert_eq!(t.current(), Transport::WebSocket);
        assert!(!t.websocket_failed(0.0, 10.0));
        assert!(!t.websocket_failed(500.0, 510.0));
        assert_eq!(t.current(), Transport::WebSocket);
        assert!(t.websocket_failed(1_000.0, 1_010.0));
        assert_eq!(t.current(), Transport::Stream);
        assert_eq!(t.current().connected_line(), "connected (HTTP stream)");
    }

    #[test]
    fn an_open_in_between_starts_the_count_again() {
        let mut t = Transports::default();
        t.websocket_failed(0.0, 10.0);
        t.websocket_failed(20.0, 30.0);
        assert!(!t.websocket_opened(), "not a move back");
        assert!(!t.websocket_failed(40.0, 50.0));
        assert!(!t.websocket_failed(60.0, 70.0));
        assert!(t.websocket_failed(80.0, 90.0));
    }

    #[test]
    fn ten_seconds_without_an_open_falls_back_at_once() {
        let mut t = Transports::default();
        assert!(t.websocket_failed(0.0, 10_000.0), "one attempt that timed out");
        let mut t = Transports::new(quick());
        assert!(!t.websocket_failed(0.0, 40.0));
        assert!(t.websocket_failed(60.0, 100.0), "counted from the first failure's start");
    }

    #[test]
    fn a_silent_stream_means_long_polling() {
        let mut t = Transports::new(quick());
        t.websocket_failed(0.0, 100.0);
        assert_eq!(t.first_event_deadline_ms(200.0), Some(250.0));
        assert!(!t.stream_silent(200.0, 249.0));
        assert!(t.stream_silent(200.0, 250.0));
        assert_eq!(t.current(), Transport::Poll);
        assert_eq!(t.first_event_deadline_ms(300.0), None, "polls have no first-event deadline");
        assert_eq!(t.current().connected_line(), "connected (long polling)");
        assert!(!t.websocket_failed(0.0, 1.0), "HTTP transports do not count WebSocket failures");
    }

    #[test]
    fn websocket_is_tried_again_every_period_and_taken_back_once_it_opens() {
        let mut t = Transports::new(quick());
        assert_eq!(t.probe_due_ms(), None, "no probe on WebSocket");
        t.websocket_failed(0.0, 100.0);
        assert_eq!(t.probe_due_ms(), Some(1_100.0));
        assert!(!t.take_probe(1_099.0));
        assert!(t.take_probe(1_100.0));
        assert_eq!(t.probe_due_ms(), Some(2_100.0), "a failed probe waits its turn");
        assert!(!t.take_probe(1_200.0));
        assert!(t.take_probe(2_200.0));
        assert!(t.websocket_opened(), "a move back");
        assert_eq!(t.current(), Transport::WebSocket);
        assert_eq!(t.probe_due_ms(), None);
        assert_eq!(t.current().connected_line(), "connected");
    }

    #[test]
    fn a_test_shortens_only_the_numbers_it_names() {
        let config: TransportConfig = serde_json::from_str(r#"{"probe_every_ms": 3000}"#).expect("config");
        assert_eq!(config, TransportConfig { probe_every_ms: 3_000.0, ..TransportConfig::default() });
    }

    #[test]
    fn http_that_fails_too_tries_websocket_again_once_a_probe_is_due() {
        let mut t = Transports::new(quick());
        t.websocket_failed(0.0, 100.0);
        assert!(!t.http_failed(500.0));
        assert_eq!(t.current(), Transport::Stream);
        assert!(t.http_failed(1_100.0));
        assert_eq!(t.current(), Transport::WebSocket);
        assert_eq!(t.probe_due_ms(), None);
    }

    #[test]
    fn a_remembered_http_transport_is_where_the_next_view_starts() {
        let mut t = Transports::new(quick());
        assert_eq!(t.in_use(), None, "nothing to remember on WebSocket");
        t.websocket_failed(0.0, 100.0);
        let in_use = t.in_use().expect("the stream, remembered");
        assert_eq!(in_use, InUse { transport: Transport::Stream, probe_at_ms: 1_100.0 });
        let stored: InUse = serde_json::from_str(&serde_json::to_string(&in_use).unwrap()).unwrap();
        assert_eq!(stored, in_use);

        let next = Transports::starting(quick(), Some(in_use), 500.0);
        assert_eq!((next.current(), next.probe_due_ms()), (Transport::Stream, Some(1_100.0)));
        let much_later = Transports::starting(quick(), Some(in_use), 99_000.0);
        assert_eq!(much_later.probe_due_ms(), Some(1_100.0), "a probe due already: at once");
        let skewed = InUse { probe_at_ms: 1e12, ..in_use };
        assert_eq!(Transports::starting(quick(), Some(skewed), 0.0).probe_due_ms(), Some(1_000.0), "a period at most");
        let websocket = InUse { transport: Transport::WebSocket, ..in_use };
        assert_eq!(Transports::starting(quick(), Some(websocket), 0.0).current(), Transport::WebSocket);
        assert_eq!(Transports::starting(quick(), None, 0.0).current(), Transport::WebSocket);
    }

    #[test]
    fn a_stripped_upgrade_falls_back_at_once() {
        let mut t = Transports::new(quick());
        assert!(!t.websocket_failed(0.0, 10.0), "one failed open");
        assert!(t.upgrade_stripped(20.0), "the server says a proxy strips Upgrade");
        assert_eq!((t.current(), t.probe_due_ms()), (Transport::Stream, Some(1_020.0)));
        assert!(!t.upgrade_stripped(30.0), "already on HTTP");
    }

    #[test]
    fn labels_and_keys() {
        assert_eq!(Transport::WebSocket.label(), None);
        assert_eq!(Transport::Stream.key(), "stream");
        assert_eq!(Transport::Poll.label(), Some("long polling"));
    }
}
