//! `hostile`: a soak. For a bounded time, well-behaved members of one group
//! read everything its publishers send, while hostile clients of every kind
//! (pingers, stalled readers, slowloris, floods, reconnect storms, group
//! spam, history pages nobody reads) come from ten other loopback
//! addresses, up to the server's per-address cap each, and come back
//! whenever they are closed. Reports the server's RSS over time, how every
//! hostile socket ended, and whether every member got every acknowledged
//! message exactly once and in order; fails on any loss or past
//! `--max-rss-mib`.

mod fate;
mod kinds;
mod members;
mod outcomes;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout_at, Instant};
use uuid::Uuid;

use crate::client::server_connections;
use crate::procfs::{resident_kib, tcp_kernel};
use fate::Fate;
pub use kinds::Kind;
use kinds::{Arena, PLAN};
use members::{Held, Published, Schedule};
use outcomes::Outcomes;

pub struct Hostile {
    pub addr: SocketAddr,
    pub server_pid: Option<u32>,
    pub duration: Duration,
    pub members: usize,
    pub publishers: usize,
    /// Messages per second over all publishers.
    pub rate: u64,
    /// Hostile sockets at once, spread evenly over the ten addresses.
    pub hostile: usize,
    pub max_rss_mib: u64,
    /// The hostile kinds that run (their addresses stay idle otherwise).
    pub kinds: Vec<Kind>,
}

/// Members per source address, well under the server's default cap of 100
/// (a reconnecting member's old socket may still count for a moment).
const MEMBERS_PER_ADDRESS: usize = 50;
/// The members' first source address: 127.0.0.12, after the hostile ones.
const FIRST_MEMBER_OCTET: usize = 12;
/// How often the server's RSS is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long members may take to join before the run starts.
const JOIN_WITHIN: Duration = Duration::from_secs(60);
/// After the publishing ends: for the acknowledgements of what is pending,
/// then for every member to hold the last acknowledged message.
const ACKS_WITHIN: Duration = Duration::from_secs(30);
const CATCH_UP_WITHIN: Duration = Duration::from_secs(60);

fn loopback(octet: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet as u8))
}

/// One reading, some seconds into the run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    rss_kib: u64,
    /// The server's WebSockets, from its `/healthz`.
    websockets: Option<u64>,
    /// The machine's TCP buffer memory and orphaned sockets.
    kernel: Option<(u64, u64)>,
}

impl Sample {
    async fn take(pid: u32, addr: SocketAddr, begun: Instant) -> anyhow::Result<Self> {
        Ok(Self {
            at: begun.elapsed().as_secs_f64(),
            rss_kib: resident_kib(pid)?,
            // Bounded: a server too busy to answer is a sample without it.
            websockets: tokio::time::timeout(Duration::from_secs(2), server_connections(addr))
                .await
                .ok()
                .and_then(Result::ok),
            kernel: tcp_kernel().ok(),
        })
    }
}

pub async fn run(soak: Hostile) -> anyhow::Result<()> {
    let per_address = soak.hostile / PLAN.len();
    let member_addresses = soak.members.div_ceil(MEMBERS_PER_ADDRESS);
    if per_address == 0 || soak.members == 0 || soak.publishers == 0 || soak.rate == 0 {
        bail!("--hostile must be at least {}, and --members, --publishers and --rate at least 1", PLAN.len());
    }
    if FIRST_MEMBER_OCTET + member_addresses >= 255 {
        bail!("too many members for the loopback addresses");
    }
    let publisher_source = loopback(FIRST_MEMBER_OCTET + member_addresses);
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let busy = format!("soak-{tag}");
    let quiet = format!("soak-{tag}-quiet");
    members::prime(soak.addr, publisher_source, &quiet).await.context("creating the quiet group")?;

    let started = Instant::now();
    let give_up = started + JOIN_WITHIN + soak.duration + ACKS_WITHIN + CATCH_UP_WITHIN;
    let (done_tx, done_rx) = watch::channel(None);
    let mut progress = Vec::new();
    let mut member_tasks = Vec::new();
    for index in 0..soak.members {
        let (tx, rx) = watch::channel(None);
        let source = loopback(FIRST_MEMBER_OCTET + index / MEMBERS_PER_ADDRESS);
        let member = members::member(soak.addr, busy.clone(), source, tx, done_rx.clone(), give_up);
        member_tasks.push(tokio::spawn(member));
        progress.push(rx);
    }
    for (index, rx) in progress.iter_mut().enumerate() {
        timeout_at(started + JOIN_WITHIN, rx.wait_for(Option::is_some))
            .await
            .with_context(|| format!("member {index} did not join within {JOIN_WITHIN:?}"))??;
    }
    let addresses = PLAN.iter().filter(|kind| soak.kinds.contains(kind)).count();
    println!(
        "{} members in {busy} (from {}), publishing; {} hostile sockets from {addresses} of 127.0.0.2–127.0.0.11 ({per_address} each), for {} s",
        soak.members,
        address_range(FIRST_MEMBER_OCTET, member_addresses),
        per_address * addresses,
        soak.duration.as_secs()
    );

    let begun = Instant::now();
    let end = begun + soak.duration;
    let interval = Duration::from_secs_f64(soak.publishers as f64 / soak.rate as f64);
    let publisher_tasks: Vec<_> = (0..soak.publishers)
        .map(|index| {
            // Publishers take turns rather than sending together.
            let offset = interval.mul_f64(index as f64 / soak.publishers as f64);
            let plan = Schedule { interval, offset, end, give_up: end + ACKS_WITHIN };
            tokio::spawn(members::publisher(soak.addr, busy.clone(), publisher_source, index, plan))
        })
        .collect();

    let (stop_tx, stop_rx) = watch::channel(false);
    let arena = Arena { server: soak.addr, busy: busy.clone().into(), quiet: quiet.into(), stop: stop_rx.clone() };
    let mut by_kind: BTreeMap<Kind, (Arc<Outcomes>, Vec<usize>)> = BTreeMap::new();
    let mut slot_tasks = Vec::new();
    for (position, kind) in PLAN.iter().enumerate().filter(|(_, kind)| soak.kinds.contains(kind)) {
        let octet = 2 + position;
        let (outcomes, octets) = by_kind.entry(*kind).or_default();
        octets.push(octet);
        let first_slot = (octets.len() - 1) * per_address;
        for slot in first_slot..first_slot + per_address {
            let run = kinds::run_slot(*kind, arena.clone(), slot, loopback(octet), outcomes.clone());
            slot_tasks.push(tokio::spawn(run));
        }
    }
    let sampler = tokio::spawn(sample_rss(soak.addr, soak.server_pid, begun, stop_rx));

    sleep_until(end).await;
    let _ = stop_tx.send(true);
    let mut published = Vec::new();
    for task in publisher_tasks {
        published.push(task.await?);
    }
    let target = published.iter().flat_map(|p| p.acked.iter().map(|(seq, _)| *seq)).max().unwrap_or(0);
    done_tx.send_replace(Some(target));
    let mut held = Vec::new();
    for task in member_tasks {
        held.push(task.await?);
    }
    for task in slot_tasks {
        task.await?;
    }
    let mut samples = sampler.await?;
    if let Some(pid) = soak.server_pid {
        samples.push(Sample::take(pid, soak.addr, begun).await?);
    }
    report(&soak, &busy, &published, &held, &by_kind, &samples)
}

/// Microsecond latencies in one histogram.
fn latencies<'a>(us: impl Iterator<Item = &'a u32>) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    for &latency in us {
        histogram.record(u64::from(latency.max(1))).context("recording a latency")?;
    }
    Ok(histogram)
}

fn quantiles(histogram: &Histogram<u64>) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.1}, p99 {:.1}, max {:.1}",
        ms(histogram.value_at_quantile(0.5)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max())
    )
}

fn address_range(first: usize, count: usize) -> String {
    if count == 1 {
        format!("127.0.0.{first}")
    } else {
        format!("127.0.0.{first}–{}", first + count - 1)
    }
}

/// The server's RSS (and its WebSockets) every few seconds until `stop`.
async fn sample_rss(
    addr: SocketAddr,
    pid: Option<u32>,
    begun: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let Some(pid) = pid else { return samples };
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return samples,
        }
        let Ok(sample) = Sample::take(pid, addr, begun).await else { return samples };
        samples.push(sample);
    }
}

/// Prints everything and fails on any loss, or past the RSS limit.
fn report(
    soak: &Hostile,
    busy: &str,
    published: &[Published],
    held: &[Held],
    by_kind: &BTreeMap<Kind, (Arc<Outcomes>, Vec<usize>)>,
    samples: &[Sample],
) -> anyhow::Result<()> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "every {} s: server RSS; WebSockets it counts; the machine's kernel TCP buffers and orphaned sockets:",
        SAMPLE_EVERY.as_secs()
    );
    let unknown = || "-".to_owned();
    for sample in samples {
        println!(
            "  {:6.1} s  {:7.1} MiB  {:>5} WebSockets  {:>9} kernel TCP  {:>5} orphans",
            sample.at,
            mib(sample.rss_kib),
            sample.websockets.map_or_else(unknown, |n| n.to_string()),
            sample.kernel.map_or_else(unknown, |(kib, _)| format!("{:.1} MiB", mib(kib))),
            sample.kernel.map_or_else(unknown, |(_, orphans)| orphans.to_string()),
        );
    }
    let max_kib = samples.iter().map(|sample| sample.rss_kib).max();
    let max_kernel = samples.iter().filter_map(|sample| sample.kernel.map(|(kib, _)| kib)).max();
    if let (Some(max), Some((first, _))) = (max_kernel, samples.first().and_then(|sample| sample.kernel)) {
        println!(
            "kernel TCP buffers max {:.1} MiB, {:.1} MiB at the start (the whole machine's, beside the server's RSS)",
            mib(max),
            mib(first)
        );
    }
    if let Some(max) = max_kib {
        println!("server RSS max {:.1} MiB (limit {} MiB)", mib(max), soak.max_rss_mib);
    }

    let mut hostile_refused = 0;
    let mut kept = 0;
    println!("hostile sockets, by kind (attempts; how each ended, with the longest it was open):");
    for (kind, (outcomes, octets)) in by_kind {
        let first = octets.first().copied().unwrap_or(0);
        println!("  {kind}, from {}:", address_range(first, octets.len()));
        for line in outcomes.summary() {
            println!("    {line}");
        }
        hostile_refused += outcomes.count(|fate| matches!(fate, Fate::Refused(_)));
        kept += outcomes.count(|fate| *fate == Fate::KeptPastHold);
    }

    let expected: HashMap<u64, Uuid> = published.iter().flat_map(|p| p.acked.iter().copied()).collect();
    let unacked: usize = published.iter().map(|p| p.unacked).sum();
    let (mut lost, mut duplicated, mut holes, mut resets) = (0u64, 0u64, 0u64, 0u64);
    let mut disconnects: BTreeMap<&str, u64> = BTreeMap::new();
    let mut failed_connects: BTreeMap<&str, u64> = BTreeMap::new();
    for member in held {
        let seen: HashMap<u64, Uuid> = member.seen.iter().copied().collect();
        lost += expected.iter().filter(|(seq, id)| seen.get(seq) != Some(id)).count() as u64;
        duplicated += member.duplicates;
        holes += member.holes;
        resets += member.resets;
        for (why, n) in &member.disconnects {
            *disconnects.entry(why.as_str()).or_default() += n;
        }
        for (why, n) in &member.failed_connects {
            *failed_connects.entry(why.as_str()).or_default() += n;
        }
    }
    let reconnects: u64 = disconnects.values().sum();
    let mut refused_sends: BTreeMap<&str, u64> = BTreeMap::new();
    let mut publisher_failed_connects: BTreeMap<&str, u64> = BTreeMap::new();
    for publisher in published {
        for (code, n) in &publisher.refused {
            *refused_sends.entry(code.as_str()).or_default() += n;
        }
        for (why, n) in &publisher.failed_connects {
            *publisher_failed_connects.entry(why.as_str()).or_default() += n;
        }
    }
    // What the schedule asked for: a server that starves the group's
    // publishers loses nothing acknowledged, and still fails its members.
    let scheduled = soak.rate * soak.duration.as_secs();
    println!(
        "publishers: {} of {scheduled} scheduled messages acknowledged ({}/s) in {busy}, {unacked} never acknowledged; refused sends {refused_sends:?}; {} reconnects, failed connects {publisher_failed_connects:?}",
        expected.len(),
        soak.rate,
        published.iter().map(|p| p.reconnects).sum::<u64>()
    );
    println!(
        "members: {} × {} messages expected: lost {lost}, duplicated or out of order {duplicated}, holes {holes}, resets {resets}; {reconnects} reconnects {disconnects:?}, failed connects {failed_connects:?}",
        held.len(),
        expected.len()
    );
    let acks = latencies(published.iter().flat_map(|p| &p.ack_latencies_us))?;
    let deliveries = latencies(held.iter().flat_map(|member| &member.latencies_us))?;
    println!("latency ms, send → ack: {}; send → each member: {}", quantiles(&acks), quantiles(&deliveries));
    println!(
        "result max_rss_mib={} max_kernel_tcp_mib={} delivery_p99_ms={:.1} lost={lost} duplicated={duplicated} holes={holes} resets={resets} acked={} unacked={unacked} member_reconnects={reconnects} hostile_refused={hostile_refused} kept_past_hold={kept}",
        max_kib.map_or("-".to_owned(), |kib| format!("{:.1}", mib(kib))),
        max_kernel.map_or("-".to_owned(), |kib| format!("{:.1}", mib(kib))),
        deliveries.value_at_quantile(0.99) as f64 / 1000.0,
        expected.len()
    );

    let mut failures = Vec::new();
    if lost + duplicated + holes + resets > 0 {
        failures.push(format!("members lost {lost}, duplicated {duplicated}, holes {holes}, resets {resets}"));
    }
    if unacked > 0 {
        failures.push(format!("{unacked} messages were never acknowledged"));
    }
    if (expected.len() as u64) < scheduled / 2 {
        failures.push(format!("only {} of {scheduled} scheduled messages were acknowledged", expected.len()));
    }
    if let Some(max) = max_kib.filter(|max| *max > soak.max_rss_mib * 1024) {
        failures.push(format!("server RSS reached {:.1} MiB", mib(max)));
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}
