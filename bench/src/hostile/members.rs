//! The well-behaved side: members of the busy group who read everything,
//! and publishers at a modest rate. A member that gets disconnected
//! reconnects with `since` and its epoch and must recover without a gap; at
//! the end every member must hold every acknowledged message exactly once,
//! in sequence order.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use roomcast_shared::{ClientCommand, ErrorCode, MessageId, ServerEvent};
use tokio::sync::watch;
use tokio::time::{interval_at, sleep, sleep_until, timeout, timeout_at, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::fate::Fate;
use crate::client::{Join, Mode, Socket};
use crate::fanout::Clock;

/// Between two connection attempts of a well-behaved client (the server
/// may refuse one for a moment, e.g. while its old socket is released).
const RETRY: Duration = Duration::from_millis(250);
/// How long a well-behaved client waits for its handshake: the server's
/// default handshake timeout (10 s) and a margin.
const CONNECT_WITHIN: Duration = Duration::from_secs(15);
/// Sends a publisher may have unacknowledged.
const WINDOW: usize = 64;
/// When a `rate_limited` or `unavailable` send is sent again.
const RESEND_AFTER: Duration = Duration::from_millis(500);

/// What one member received.
#[derive(Debug, Default)]
pub struct Held {
    /// (seq, id) of every message taken, in order.
    pub seen: Vec<(u64, Uuid)>,
    last: u64,
    epoch: String,
    /// Messages numbered at or below one already held: duplicates, or out
    /// of order.
    pub duplicates: u64,
    /// Numbers skipped: a `gap`, or a number missing between two.
    pub holes: u64,
    /// `reset`s while holding messages: its history was not the group's.
    pub resets: u64,
    /// Why its connections ended before the end, each time.
    pub disconnects: BTreeMap<String, u64>,
    /// Why connection attempts failed.
    pub failed_connects: BTreeMap<String, u64>,
    /// Send → receive, in microseconds, of every message taken (a message
    /// replayed after a reconnection counts with its wait).
    pub latencies_us: Vec<u32>,
}

impl Held {
    fn take(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Welcome(welcome) if self.last == 0 => self.epoch = welcome.epoch,
            // A group created under a member that held nothing comes with
            // its epoch; anything else means its history was lost.
            ServerEvent::Reset { epoch } => {
                if self.last > 0 {
                    self.resets += 1;
                }
                self.epoch = epoch;
            }
            ServerEvent::Gap { from, to } => self.holes += to.saturating_sub(from) + 1,
            ServerEvent::Message(message) if message.seq <= self.last => self.duplicates += 1,
            ServerEvent::Message(message) => {
                self.holes += message.seq - self.last - 1;
                self.last = message.seq;
                self.seen.push((message.seq, message.id.0));
                if let Some(sent_us) = sent_us(&message.text) {
                    let latency = Clock.now_us().saturating_sub(sent_us);
                    self.latencies_us.push(u32::try_from(latency).unwrap_or(u32::MAX));
                }
            }
            _ => {}
        }
    }

    /// Reads until the connection ends (why, as a phrase) or `done` says
    /// the member may stop (`None`). `progress` gets the last number held
    /// once the member is synced.
    async fn read(
        &mut self,
        socket: &mut Socket,
        progress: &watch::Sender<Option<u64>>,
        done: &mut watch::Receiver<Option<u64>>,
        give_up: Instant,
    ) -> Option<String> {
        let mut synced = false;
        loop {
            if synced && done.borrow().is_some_and(|target| self.last >= target) {
                return None;
            }
            let frame = tokio::select! {
                frame = socket.next() => frame,
                changed = done.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return None,
                },
                () = sleep_until(give_up) => return None,
            };
            let text = match frame {
                None => return Some("EOF".into()),
                Some(Err(err)) => return Some(format!("error: {err}")),
                Some(Ok(Message::Close(frame))) => {
                    return Some(format!("closed {}", frame.map_or(1005, |frame| u16::from(frame.code))))
                }
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
            };
            match ServerEvent::decode(&text) {
                Ok(ServerEvent::Synced { .. }) => synced = true,
                Ok(event) => self.take(event),
                Err(err) => return Some(format!("undecodable event: {err}")),
            }
            if synced {
                progress.send_replace(Some(self.last));
            }
        }
    }
}

/// One member: joins `group` from `source` with `since=0`, reads
/// everything, reconnects with `since` after any disconnection, until it
/// holds the number `done` names (or `give_up`).
pub async fn member(
    server: SocketAddr,
    group: String,
    source: IpAddr,
    progress: watch::Sender<Option<u64>>,
    mut done: watch::Receiver<Option<u64>>,
    give_up: Instant,
) -> Held {
    let client = Uuid::new_v4();
    let mut held = Held::default();
    // Until it holds what `done` names (checked here too: a member may be
    // between connections when the target comes).
    while Instant::now() < give_up && !done.borrow().is_some_and(|target| held.last >= target) {
        let epoch = held.epoch.clone();
        let join = Join { group: &group, client, mode: Mode::Json, resume: Some((held.last, &epoch)) };
        let mut socket = match connect(server, source, &join).await {
            Ok(socket) => socket,
            Err(fate) => {
                *held.failed_connects.entry(fate.to_string()).or_default() += 1;
                sleep(RETRY).await;
                continue;
            }
        };
        match held.read(&mut socket, &progress, &mut done, give_up).await {
            None => {
                let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                break;
            }
            Some(why) => *held.disconnects.entry(why).or_default() += 1,
        }
    }
    held
}

/// Joins without a receive buffer of its own, within the server's
/// handshake timeout and a margin.
async fn connect(server: SocketAddr, source: IpAddr, join: &Join<'_>) -> Result<Socket, Fate> {
    let joining = timeout(CONNECT_WITHIN, super::fate::join(server, source, None, join)).await;
    joining.unwrap_or_else(|_| Err(Fate::Other(format!("no answer within {CONNECT_WITHIN:?}"))))
}

/// What one publisher got acknowledged.
#[derive(Debug, Default)]
pub struct Published {
    /// (seq, id) of every acknowledged message.
    pub acked: Vec<(u64, Uuid)>,
    /// Sent and never acknowledged (by `give_up`).
    pub unacked: usize,
    /// Refusals by error code (resent later when retryable).
    pub refused: BTreeMap<String, u64>,
    pub reconnects: u64,
    /// Why connection attempts failed.
    pub failed_connects: BTreeMap<String, u64>,
    /// First send → ack, in microseconds.
    pub ack_latencies_us: Vec<u32>,
}

/// The publishing schedule: one message every `interval` after `offset`,
/// until `end`; then the acknowledgements of what is pending, until
/// `give_up`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub interval: Duration,
    pub offset: Duration,
    pub end: Instant,
    pub give_up: Instant,
}

/// A message text of a few hundred bytes to 4 KiB, by number, with the
/// time it was first sent (wall-clock microseconds).
fn text(index: usize, n: u64) -> String {
    let mut text = format!("soak {index}:{n}:{} ", Clock.now_us());
    let size = 256 + (n as usize * 997) % 3841;
    text.extend(std::iter::repeat_n('m', size.saturating_sub(text.len())));
    text
}

/// When a message made by [`text`] was first sent.
fn sent_us(text: &str) -> Option<u64> {
    text.strip_prefix("soak ")?.split(' ').next()?.split(':').nth(2)?.parse().ok()
}

/// One publisher: sends on its schedule, keeps what is not acknowledged,
/// and sends it again (same ids) after a retryable refusal or a
/// reconnection.
pub async fn publisher(server: SocketAddr, group: String, source: IpAddr, index: usize, plan: Schedule) -> Published {
    let client = Uuid::new_v4();
    let mut published = Published::default();
    // Pending sends by id, and their texts.
    let mut pending: HashMap<Uuid, String> = HashMap::new();
    let mut resend: Vec<Uuid> = Vec::new();
    let mut resend_at: Option<Instant> = None;
    let mut next = 0u64;
    let mut ticker = interval_at(Instant::now() + plan.offset, plan.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    'connection: while Instant::now() < plan.give_up && !(Instant::now() >= plan.end && pending.is_empty()) {
        let join = Join { group: &group, client, mode: Mode::Json, resume: None };
        let mut socket = match connect(server, source, &join).await {
            Ok(socket) => socket,
            Err(fate) => {
                *published.failed_connects.entry(fate.to_string()).or_default() += 1;
                sleep(RETRY).await;
                continue;
            }
        };
        for (id, text) in &pending {
            if !sent(&mut socket, send_frame(*id, text), plan.give_up).await {
                published.reconnects += 1;
                continue 'connection;
            }
        }
        resend.clear();
        loop {
            if Instant::now() >= plan.end && pending.is_empty() {
                break 'connection;
            }
            let publishing = Instant::now() < plan.end && pending.len() < WINDOW;
            tokio::select! {
                _ = ticker.tick(), if publishing => {
                    let id = Uuid::new_v4();
                    let body = text(index, next);
                    next += 1;
                    let frame = send_frame(id, &body);
                    pending.insert(id, body);
                    if !sent(&mut socket, frame, plan.give_up).await {
                        published.reconnects += 1;
                        continue 'connection;
                    }
                }
                () = sleep_until(resend_at.unwrap_or(plan.give_up)), if resend_at.is_some() => {
                    resend_at = None;
                    for id in std::mem::take(&mut resend) {
                        let Some(body) = pending.get(&id) else { continue };
                        if !sent(&mut socket, send_frame(id, body), plan.give_up).await {
                            published.reconnects += 1;
                            continue 'connection;
                        }
                    }
                }
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_)) | Err(_)) | None => {
                            published.reconnects += 1;
                            continue 'connection;
                        }
                        Some(Ok(_)) => continue,
                    };
                    // The group's messages come to the publisher too; only
                    // replies matter here.
                    if text.starts_with(r#"{"type":"message""#) {
                        continue;
                    }
                    match ServerEvent::decode(&text) {
                        Ok(ServerEvent::Ack { id, seq }) => {
                            // Once per id: a send repeated after a
                            // reconnection is acknowledged again.
                            if let Some(body) = pending.remove(&id.0) {
                                published.acked.push((seq, id.0));
                                let latency = sent_us(&body).map(|sent| Clock.now_us().saturating_sub(sent));
                                published.ack_latencies_us.extend(latency.map(|us| u32::try_from(us).unwrap_or(u32::MAX)));
                            }
                        }
                        Ok(ServerEvent::Error { code, id: Some(id), .. }) => {
                            *published.refused.entry(format!("{code:?}")).or_default() += 1;
                            if matches!(code, ErrorCode::RateLimited | ErrorCode::Unavailable) {
                                resend.push(id.0);
                                resend_at.get_or_insert(Instant::now() + RESEND_AFTER);
                            } else {
                                pending.remove(&id.0);
                            }
                        }
                        _ => {}
                    }
                }
                // Wakes the loop at the end of the schedule, so that it
                // stops then if nothing is pending.
                () = sleep_until(plan.end), if Instant::now() < plan.end => {}
                () = sleep_until(plan.give_up) => break 'connection,
            }
        }
    }
    published.unacked = pending.len();
    published
}

/// Sends `frame`, or says it could not (the connection failed, or the
/// server held the send back past `give_up`: it stops reading a publisher
/// while its history writer is full).
async fn sent(socket: &mut Socket, frame: Message, give_up: Instant) -> bool {
    matches!(timeout_at(give_up, socket.send(frame)).await, Ok(Ok(())))
}

fn send_frame(id: Uuid, text: &str) -> Message {
    Message::text(ClientCommand::Send { id: MessageId(id), text: text.to_owned() }.encode())
}

/// Makes `group` exist with one message, so that joining it never counts
/// as opening a new room.
pub async fn prime(server: SocketAddr, source: IpAddr, group: &str) -> anyhow::Result<()> {
    let join = Join { group, client: Uuid::new_v4(), mode: Mode::Json, resume: None };
    let mut socket = connect(server, source, &join).await.map_err(|fate| anyhow::anyhow!("joining {group}: {fate}"))?;
    let id = Uuid::new_v4();
    socket.send(send_frame(id, "a group where nobody publishes")).await?;
    let acked = timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            if let Message::Text(text) = frame? {
                match ServerEvent::decode(&text) {
                    Ok(ServerEvent::Ack { id: acked, .. }) if acked.0 == id => return Ok(()),
                    Ok(ServerEvent::Error { message, .. }) => bail!("refused: {message}"),
                    _ => {}
                }
            }
        }
        bail!("the connection ended")
    })
    .await;
    acked.context("no ack within 10 s")??;
    let _ = socket.close(None).await;
    Ok(())
}
