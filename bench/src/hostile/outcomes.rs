//! What each hostile kind's sockets came to: attempts, sockets opened, how
//! each ended by variant of the kind (with the longest it stayed open that
//! way), and notes a kind keeps of its own (acks, refusals by code).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use super::fate::Fate;

#[derive(Debug, Default)]
pub struct Outcomes {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    attempts: u64,
    opened: u64,
    ends: BTreeMap<(&'static str, Fate), End>,
    notes: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct End {
    count: u64,
    /// The longest a socket that ended so stayed open.
    longest: Duration,
}

impl Outcomes {
    pub fn attempted(&self) {
        self.lock().attempts += 1;
    }

    /// One attempt's end, by a socket of `variant`; `open_for`: how long
    /// its socket was open, if it opened.
    pub fn ended(&self, variant: &'static str, fate: Fate, open_for: Option<Duration>) {
        let mut inner = self.lock();
        inner.opened += u64::from(open_for.is_some());
        let end = inner.ends.entry((variant, fate)).or_default();
        end.count += 1;
        end.longest = end.longest.max(open_for.unwrap_or_default());
    }

    pub fn note(&self, what: impl Into<String>) {
        *self.lock().notes.entry(what.into()).or_default() += 1;
    }

    /// Sockets that ended so that `which` holds.
    pub fn count(&self, which: impl Fn(&Fate) -> bool) -> u64 {
        self.lock().ends.iter().filter(|((_, fate), _)| which(fate)).map(|(_, end)| end.count).sum()
    }

    /// Lines: attempts and sockets opened; then by variant, each ending
    /// (most frequent first); then the notes.
    pub fn summary(&self) -> Vec<String> {
        let inner = self.lock();
        let mut lines = vec![format!("{} attempts, {} opened", inner.attempts, inner.opened)];
        let mut variants: BTreeMap<&str, Vec<(&Fate, &End)>> = BTreeMap::new();
        for ((variant, fate), end) in &inner.ends {
            variants.entry(variant).or_default().push((fate, end));
        }
        for (variant, mut ends) in variants {
            ends.sort_by_key(|(_, end)| std::cmp::Reverse(end.count));
            let mut line = if variant.is_empty() { String::new() } else { format!("{variant}: ") };
            let parts: Vec<String> = ends
                .iter()
                .map(|(fate, end)| match end.longest.as_secs_f64() {
                    0.0 => format!("{fate} ×{}", end.count),
                    longest => format!("{fate} ×{} (open ≤ {longest:.1} s)", end.count),
                })
                .collect();
            let _ = write!(line, "{}", parts.join("; "));
            lines.push(line);
        }
        if !inner.notes.is_empty() {
            let notes: Vec<String> = inner.notes.iter().map(|(what, n)| format!("{what} ×{n}")).collect();
            lines.push(format!("notes: {}", notes.join(", ")));
        }
        lines
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
