//! Reading a process's memory and CPU time from /proc (Linux).

use anyhow::Context;

/// Resident set size in KiB.
pub fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

/// User plus system CPU time, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc stat")?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after_name = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).context("short stat")?.iter().map(|f| f.parse::<u64>().unwrap_or(0)).sum();
    Ok(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture this runs on.
    100.0
}

/// The kernel's TCP buffer memory on this machine, in KiB, and its orphaned
/// sockets (closed by their process, still holding unsent bytes), from
/// /proc/net/sockstat: what non-reading peers make the kernel hold beside
/// a server's RSS.
pub fn tcp_kernel() -> anyhow::Result<(u64, u64)> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").context("reading /proc/net/sockstat")?;
    let line = sockstat.lines().find_map(|line| line.strip_prefix("TCP:")).context("no TCP line")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| -> anyhow::Result<u64> {
        let at = fields.iter().position(|field| *field == name).with_context(|| format!("no {name}"))?;
        fields.get(at + 1).and_then(|value| value.parse().ok()).with_context(|| format!("bad {name}"))
    };
    // `mem` counts pages: 4 KiB on the machines this runs on.
    Ok((field("mem")? * 4, field("orphan")?))
}
