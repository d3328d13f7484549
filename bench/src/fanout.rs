//! `fanout`: S subscribers and P publishers in one group. Publishers send N
//! messages each, as fast as acknowledgements allow (a window of unacked
//! messages each) or at a fixed total rate; subscribers check every message
//! arrives exactly once and record send → receive latency.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use roomcast_shared::{ClientCommand, MessageId, ServerEvent};
use tokio::sync::{watch, Barrier, Semaphore};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use uuid::Uuid;

use crate::client::{connect, source_address, Mode, Socket};
use crate::event_stream::EventStream;
use crate::lean_socket::LeanSocket;
use crate::procfs::cpu_seconds;

pub struct Fanout {
    pub addr: SocketAddr,
    pub subscribers: usize,
    pub publishers: usize,
    pub messages: usize,
    pub size: usize,
    pub window: usize,
    /// Total messages per second over all publishers; 0 means as fast as
    /// the window allows.
    pub rate: u64,
    pub mode: Mode,
    pub server_pid: Option<u32>,
    /// The group (default: a new one), so that several generator processes
    /// can share one.
    pub group: Option<String>,
    /// Where the publishers connect (default: `addr`): another node.
    pub publish_addr: Option<SocketAddr>,
    /// Subscribers only: expect `publishers` × `messages` from publishers in
    /// another process, for this long at most.
    pub listen_for: Option<Duration>,
    /// How the subscribers are members: a WebSocket, or the HTTP fallback's
    /// event stream (JSON events).
    pub over: Over,
}

/// How a subscriber connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Over {
    Websocket,
    /// `GET /api/events/…`, Server-Sent Events.
    Sse,
    /// A WebSocket read by the generator's own minimal frame reader (raw
    /// mode): the cheapest subscriber, so that the generator is not what
    /// sets the latency ([`LeanSocket`]).
    Lean,
}

/// A subscriber's connection. The socket stays inline (boxing it would
/// add an allocation per WebSocket member, which the earlier rows did not
/// have).
#[allow(clippy::large_enum_variant)]
enum Member {
    Socket(Socket),
    Stream(EventStream),
    Lean(LeanSocket),
}

/// A text frame or event, as it came.
enum Text<'a> {
    Frame(Utf8Bytes),
    Event(String),
    /// In the lean reader's buffer.
    Read(&'a str),
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Frame(text) => text.as_str(),
            Self::Event(text) => text,
            Self::Read(text) => text,
        }
    }
}

impl Member {
    async fn connect(fanout: &Fanout, index: usize, group: &str) -> anyhow::Result<Self> {
        let source = source_address(index);
        Ok(match fanout.over {
            Over::Websocket => Self::Socket(connect(fanout.addr, source, group, fanout.mode).await?),
            Over::Sse => Self::Stream(EventStream::open(fanout.addr, source, group).await?),
            Over::Lean => Self::Lean(LeanSocket::from_socket(connect(fanout.addr, source, group, Mode::Raw).await?)),
        })
    }

    /// The next text frame or event; `None` once the connection ended.
    async fn next_text(&mut self) -> anyhow::Result<Option<Text<'_>>> {
        match self {
            Self::Socket(socket) => loop {
                match socket.next().await.transpose()? {
                    None => return Ok(None),
                    Some(Message::Text(text)) => return Ok(Some(Text::Frame(text))),
                    Some(_) => {}
                }
            },
            Self::Stream(stream) => Ok(stream.next_data().await?.map(Text::Event)),
            Self::Lean(socket) => Ok(socket.next_text().await?.map(Text::Read)),
        }
    }
}

/// Send and receive times in wall-clock microseconds, so that a publisher
/// in one process and subscribers in another measure the same latency.
#[derive(Debug, Clone, Copy)]
pub struct Clock;

impl Clock {
    pub fn now_us(self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
    }
}

/// How long subscribers keep reading after the last publisher finished;
/// whatever has not arrived by then counts as lost.
const DRAIN: Duration = Duration::from_secs(10);

/// What one subscriber saw.
///
/// Latencies are kept as a plain list and merged into one histogram at the
/// end: a histogram per subscriber (15,000 in scenario d) grows and moves
/// itself as latencies grow, and that page-faulting showed up as the
/// generator's largest cost.
struct Tally {
    /// One bit per (publisher, message).
    seen: Vec<Vec<u64>>,
    distinct: u64,
    duplicates: u64,
    latencies_us: Vec<u32>,
}

impl Tally {
    fn new(publishers: usize, messages: usize) -> Self {
        Self {
            seen: vec![vec![0; messages.div_ceil(64)]; publishers],
            distinct: 0,
            duplicates: 0,
            latencies_us: Vec::with_capacity(publishers * messages),
        }
    }

    fn record(&mut self, text: &str, base: Clock) {
        let mut fields = text.splitn(4, ':');
        let (Some(publisher), Some(index), Some(sent_us)) = (fields.next(), fields.next(), fields.next()) else {
            return;
        };
        let (Ok(publisher), Ok(index), Ok(sent_us)) =
            (publisher.parse::<usize>(), index.parse::<usize>(), sent_us.parse::<u64>())
        else {
            return;
        };
        let Some(word) = self.seen.get_mut(publisher).and_then(|bits| bits.get_mut(index / 64)) else { return };
        let bit = 1 << (index % 64);
        if *word & bit != 0 {
            self.duplicates += 1;
            return;
        }
        *word |= bit;
        self.distinct += 1;
        let now_us = base.now_us();
        let latency = now_us.saturating_sub(sent_us).max(1);
        self.latencies_us.push(u32::try_from(latency).unwrap_or(u32::MAX));
    }
}

pub async fn run(fanout: Fanout) -> anyhow::Result<()> {
    let group = fanout.group.clone().unwrap_or_else(|| format!("bench-{}", &Uuid::new_v4().to_string()[..8]));
    let expected = (fanout.publishers * fanout.messages) as u64;
    let local_publishers = if fanout.listen_for.is_some() { 0 } else { fanout.publishers };
    let base = Clock;
    let ready = Arc::new(Barrier::new(fanout.subscribers + local_publishers + 1));
    let (stop, stopped) = watch::channel(false);

    let mut subscribers = Vec::new();
    if fanout.over == Over::Lean && fanout.mode != Mode::Raw {
        bail!("the lean reader reads raw members: --mode raw");
    }
    if fanout.over == Over::Sse && fanout.mode != Mode::Json {
        bail!("an event stream carries JSON events: --mode json");
    }
    for index in 0..fanout.subscribers {
        let socket = Member::connect(&fanout, index, &group).await?;
        let (ready, stopped) = (ready.clone(), stopped.clone());
        let (publishers, messages, mode) = (fanout.publishers, fanout.messages, fanout.mode);
        subscribers.push(tokio::spawn(async move {
            subscribe(socket, mode, ready, stopped, Tally::new(publishers, messages), expected, base).await
        }));
    }
    let mut publishers = Vec::new();
    let interval = (fanout.rate > 0).then(|| Duration::from_secs_f64(fanout.publishers as f64 / fanout.rate as f64));
    for index in 0..local_publishers {
        let addr = fanout.publish_addr.unwrap_or(fanout.addr);
        let socket = connect(addr, source_address(index), &group, fanout.mode).await?;
        let ready = ready.clone();
        let (messages, size, window, mode) = (fanout.messages, fanout.size, fanout.window.max(1), fanout.mode);
        // Publishers take turns rather than ticking together: at 500 msg/s
        // from 10 publishers that is one message every 2 ms, not 10 at once
        // every 20 ms (which a batching server would write as one burst).
        let pace = interval.map(|interval| (interval, interval.mul_f64(index as f64 / fanout.publishers as f64)));
        publishers.push(tokio::spawn(async move {
            publish(socket, mode, index, messages, size, window, pace, ready, base).await
        }));
    }

    ready.wait().await;
    // For a script that starts the publishing process once every
    // listening one is in its group.
    println!("subscribed {} in {group}", fanout.subscribers);
    let server_cpu = fanout.server_pid.map(cpu_seconds).transpose()?;
    let own_cpu = cpu_seconds(std::process::id())?;
    let started = Instant::now();
    for publisher in publishers {
        publisher.await??;
    }
    let sent_in = started.elapsed();
    let listen_for = fanout.listen_for;
    let drain = tokio::spawn(async move {
        tokio::time::sleep(listen_for.unwrap_or(DRAIN)).await;
        let _ = stop.send(true);
    });
    let mut latency_us = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let (mut delivered, mut lost, mut duplicates) = (0u64, 0u64, 0u64);
    let mut last_arrival = started;
    // Each message's earliest and latest latency over the subscribers.
    let mut first_last: Vec<(u32, u32)> = vec![(u32::MAX, 0); fanout.messages];
    for subscriber in subscribers {
        let (tally, finished) = subscriber.await??;
        delivered += tally.distinct;
        lost += expected - tally.distinct;
        duplicates += tally.duplicates;
        last_arrival = last_arrival.max(finished);
        // One publisher, nothing lost: a subscriber's latencies are in
        // message order.
        if fanout.publishers == 1 && tally.latencies_us.len() == fanout.messages {
            for (slot, latency) in first_last.iter_mut().zip(&tally.latencies_us) {
                slot.0 = slot.0.min(*latency);
                slot.1 = slot.1.max(*latency);
            }
        }
        for latency in tally.latencies_us {
            latency_us.record(u64::from(latency)).context("recording a latency")?;
        }
    }
    drain.abort();
    // Per broadcast (one publisher, nothing lost): when its first and last
    // member got it. A server at saturation can have the same latency
    // spread per broadcast and still start each one later (see
    // docs/BENCHMARKS.md, "Both cores").
    if let Some(spread) = BroadcastSpread::of(&first_last) {
        println!("{spread}");
    }
    let elapsed = last_arrival - started;
    let server_cpu = match (fanout.server_pid, server_cpu) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    let own_cpu = cpu_seconds(std::process::id())? - own_cpu;

    let mode = match (fanout.mode, fanout.over) {
        (Mode::Json, Over::Websocket) => "json",
        (Mode::Json, Over::Sse) => "json, subscribers over SSE",
        (_, Over::Lean) => "raw, subscribers read lean",
        (Mode::Raw, _) => "raw",
    };
    println!(
        "fanout: {} subscribers and {} publishers ({mode}), {} messages each of {} bytes, window {}, rate {}",
        fanout.subscribers,
        fanout.publishers,
        fanout.messages,
        fanout.size,
        fanout.window,
        if fanout.rate == 0 { "max".to_owned() } else { format!("{}/s", fanout.rate) }
    );
    println!(
        "sent {expected} messages in {:.2} s ({:.0} msg/s); {delivered} deliveries in {:.2} s ({:.0} deliveries/s)",
        sent_in.as_secs_f64(),
        expected as f64 / sent_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
    let h = &latency_us;
    println!(
        "latency ms: min {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        h.min() as f64 / 1000.0,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.9) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    println!("lost {lost}, duplicated {duplicates}");
    // One machine-readable line for scripts (bench/scenarios.sh).
    println!(
        "result deliveries_per_s={:.0} min_ms={:.2} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} lost={lost} duplicated={} server_us_per_delivery={} generator_cpu_pct={:.0}",
        delivered as f64 / elapsed.as_secs_f64(),
        h.min() as f64 / 1000.0,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.9) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        duplicates,
        // Three decimals: at 0.3–0.5 µs the second one is a 2–3 % step,
        // the size of the differences compared (the clock ticks behind it
        // are 10 ms: 0.1 % of a 200,000-message run's CPU).
        server_cpu.map_or("-".to_owned(), |cpu| format!("{:.3}", cpu * 1e6 / delivered.max(1) as f64)),
        own_cpu * 100.0 / elapsed.as_secs_f64()
    );
    if let Some(cpu) = server_cpu {
        println!(
            "server CPU {cpu:.2} s ({:.2} us per delivery); generator CPU {own_cpu:.2} s",
            cpu * 1e6 / delivered.max(1) as f64
        );
    } else {
        println!("generator CPU {own_cpu:.2} s");
    }
    if lost > 0 || duplicates > 0 {
        bail!("{lost} lost, {duplicates} duplicated");
    }
    Ok(())
}

/// The part of a JSON event a subscriber needs. Decoding the whole
/// `ServerEvent` (an internally tagged enum, which serde buffers) for each of
/// 100,000 deliveries a second made the generator, not the server, the
/// bottleneck of the latency scenarios.
#[derive(serde::Deserialize)]
struct Delivered<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

/// Reads until every expected message arrived, the stream ends, or `stop`
/// says the drain time is over; returns what it saw and when it last
/// received something.
async fn subscribe(
    mut member: Member,
    mode: Mode,
    ready: Arc<Barrier>,
    mut stop: watch::Receiver<bool>,
    mut tally: Tally,
    expected: u64,
    base: Clock,
) -> anyhow::Result<(Tally, Instant)> {
    if mode == Mode::Json {
        // Skip welcome and the (empty) replay.
        while let Some(text) = member.next_text().await? {
            if matches!(ServerEvent::decode(&text), Ok(ServerEvent::Synced { .. })) {
                break;
            }
        }
    }
    ready.wait().await;
    // One stop future for the whole loop rather than a timer per frame: at
    // 150,000 frames/s, arming and cancelling timers is a generator cost.
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    let mut last_arrival = Instant::now();
    while tally.distinct < expected {
        let text = tokio::select! {
            biased;
            text = member.next_text() => text?,
            _ = &mut stopped => break,
        };
        let Some(text) = text else { break };
        last_arrival = Instant::now();
        match mode {
            Mode::Raw => tally.record(&text, base),
            Mode::Json => {
                if let Ok(Delivered { kind, text: Some(text) }) = serde_json::from_str(&text) {
                    if kind == "message" {
                        tally.record(&text, base);
                    }
                }
            }
        }
    }
    Ok((tally, last_arrival))
}

/// Adds a permit for each of the publisher's messages the server
/// acknowledges (JSON) or sends back (raw), until all `messages` are.
async fn count_acks(
    stream: &mut SplitStream<Socket>,
    mode: Mode,
    own_prefix: &str,
    messages: usize,
    permits: &Semaphore,
) -> anyhow::Result<()> {
    let mut acked = 0;
    while acked < messages {
        let frame = match stream.next().await {
            None => bail!("publisher connection ended"),
            Some(frame) => frame?,
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(close) => bail!("the server closed the publisher's connection: {close:?}"),
            _ => continue,
        };
        let acknowledged = match mode {
            Mode::Raw => text.starts_with(own_prefix),
            Mode::Json => match ServerEvent::decode(&text) {
                Ok(ServerEvent::Ack { .. }) => true,
                Ok(ServerEvent::Error { message, .. }) => bail!("publish refused: {message}"),
                _ => false,
            },
        };
        if acknowledged {
            acked += 1;
            permits.add_permits(1);
        }
    }
    Ok(())
}

/// Sends `messages` texts of `size` bytes, keeping at most `window`
/// unacknowledged, optionally one per interval after an offset (`pace`). A
/// JSON publisher counts `ack`s; a raw one (which gets no acks) counts its
/// own messages coming back from the group, which works against any
/// broadcast server.
#[allow(clippy::too_many_arguments)]
async fn publish(
    socket: Socket,
    mode: Mode,
    index: usize,
    messages: usize,
    size: usize,
    window: usize,
    pace: Option<(Duration, Duration)>,
    ready: Arc<Barrier>,
    base: Clock,
) -> anyhow::Result<()> {
    let (mut sink, mut stream) = socket.split();
    let permits = Arc::new(Semaphore::new(window));
    let own_prefix = format!("{index}:");
    let acks = tokio::spawn({
        let permits = permits.clone();
        async move {
            let counted = count_acks(&mut stream, mode, &own_prefix, messages, &permits).await;
            // However counting ended, the sender must not wait for permits
            // that will never come (an evicted publisher would hang the run).
            permits.close();
            counted
        }
    });
    ready.wait().await;
    let mut ticker =
        pace.map(|(interval, offset)| tokio::time::interval_at(tokio::time::Instant::now() + offset, interval));
    for n in 0..messages {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let Ok(permit) = permits.acquire().await else {
            acks.await??;
            bail!("publisher {index}: acknowledgements stopped after {n} messages");
        };
        permit.forget();
        let mut text = format!("{index}:{n}:{}:", base.now_us());
        text.extend(std::iter::repeat_n('x', size.saturating_sub(text.len())));
        let frame = match mode {
            Mode::Raw => text,
            Mode::Json => ClientCommand::Send { id: MessageId(Uuid::now_v7()), text }.encode(),
        };
        sink.send(Message::text(frame)).await?;
    }
    acks.await??;
    Ok(())
}

/// When a broadcast's first and last member got it, medians over the
/// broadcasts (in ms).
struct BroadcastSpread {
    first_p50: f64,
    last_p50: f64,
    last_p90: f64,
}

impl BroadcastSpread {
    /// From each message's (earliest, latest) latency in µs; `None` when
    /// some message reached nobody (several publishers, or a loss).
    fn of(first_last: &[(u32, u32)]) -> Option<Self> {
        if first_last.is_empty() || first_last.iter().any(|&(first, _)| first == u32::MAX) {
            return None;
        }
        let sorted = |pick: fn(&(u32, u32)) -> u32| {
            let mut values: Vec<u32> = first_last.iter().map(pick).collect();
            values.sort_unstable();
            values
        };
        let (firsts, lasts) = (sorted(|pair| pair.0), sorted(|pair| pair.1));
        let at =
            |values: &[u32], quantile: f64| values[((values.len() - 1) as f64 * quantile) as usize] as f64 / 1000.0;
        Some(Self { first_p50: at(&firsts, 0.5), last_p50: at(&lasts, 0.5), last_p90: at(&lasts, 0.9) })
    }
}

impl std::fmt::Display for BroadcastSpread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "per broadcast: first member p50 {:.1} ms, last member p50 {:.1} ms, p90 {:.1} ms",
            self.first_p50, self.last_p50, self.last_p90
        )
    }
}
