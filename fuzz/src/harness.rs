//! The stable fuzz loop, one call per target: every seed of the target's
//! corpus first, then generated inputs until the budget is spent. A failing
//! input is shrunk (while it fails at the same place), saved, and reported
//! as a Rust byte string ready to paste into a regression test.
//!
//! # Budget (environment)
//! - `ROOMCAST_FUZZ_SECONDS`: seconds per target (default
//!   [`DEFAULT_SECONDS`]; decimals allowed).
//! - `ROOMCAST_FUZZ_ITERATIONS`: at most this many generated inputs.
//! - `ROOMCAST_FUZZ_SEED`: the random seed (decimal or `0x…`); by default
//!   one from the clock, printed in the summary so that a run can be
//!   replayed.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use crate::mutate::Mutator;

/// Seconds per target in a plain `cargo test`: with the targets run two at
/// a time, the whole crate stays well within a minute.
pub const DEFAULT_SECONDS: f64 = 3.0;

/// Longest time spent shrinking a failing input.
const SHRINK_TIME: Duration = Duration::from_secs(20);

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Also the name of its corpus directory.
    pub name: &'static str,
    /// Feeds the input to the code under test; panics when a property does
    /// not hold.
    pub check: fn(&[u8]),
    /// Tokens of the input's grammar that mutations insert.
    pub dictionary: &'static [&'static str],
    /// Longest input generated.
    pub max_len: usize,
}

/// How long to fuzz, and from which seed.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub time: Duration,
    pub iterations: Option<u64>,
    pub seed: u64,
}

impl Budget {
    /// The budget the environment asks for (see the module's doc).
    pub fn from_env(target: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let seconds = var("ROOMCAST_FUZZ_SECONDS")
            .map(|text| text.trim().parse::<f64>().expect("ROOMCAST_FUZZ_SECONDS must be a number of seconds"))
            .unwrap_or(DEFAULT_SECONDS);
        let iterations =
            var("ROOMCAST_FUZZ_ITERATIONS").map(|text| text.trim().parse().expect("ROOMCAST_FUZZ_ITERATIONS: a count"));
        let seed = var("ROOMCAST_FUZZ_SEED").map(|text| parse_seed(&text)).unwrap_or_else(|| {
            let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            // Targets started in the same nanosecond still differ.
            nanos ^ fnv1a(target.as_bytes())
        });
        Self { time: Duration::from_secs_f64(seconds.max(0.0)), iterations, seed }
    }
}

fn parse_seed(text: &str) -> u64 {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.expect("ROOMCAST_FUZZ_SEED: a number, decimal or 0x…")
}

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub seeds: usize,
    pub generated: u64,
    pub elapsed: Duration,
    pub slowest: Duration,
}

/// Runs `target` within the environment's budget and prints a one-line
/// summary; panics with the failing input if a property does not hold.
pub fn fuzz(target: &Target) -> Report {
    let budget = Budget::from_env(target.name);
    let report = run(target, budget);
    let seconds = report.elapsed.as_secs_f64();
    let total = report.seeds as u64 + report.generated;
    // Straight to the stream: the test harness captures `println!` of
    // passing tests, and this line is wanted in every run.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz {}: {} inputs ({} seeds + {} generated) in {:.1} s, {:.0}/s, slowest {:.2} ms, seed {:#x}",
        target.name,
        total,
        report.seeds,
        report.generated,
        seconds,
        total as f64 / seconds.max(1e-9),
        report.slowest.as_secs_f64() * 1e3,
        budget.seed,
    );
    report
}

/// Runs `target` within `budget`.
pub fn run(target: &Target, budget: Budget) -> Report {
    install_hook();
    let seeds = corpus(target.name);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut timed = |input: &[u8]| {
        let began = Instant::now();
        let result = try_check(target.check, input);
        slowest = slowest.max(began.elapsed());
        result
    };
    for (file, seed) in &seeds {
        if let Err(failure) = timed(seed) {
            fail(target, seed, &failure, &format!("corpus entry {}", file.display()));
        }
    }
    let inputs: Vec<Vec<u8>> = seeds.into_iter().map(|(_, seed)| seed).collect();
    let mut mutator = Mutator::new(budget.seed, &inputs, target.dictionary, target.max_len);
    let mut generated = 0;
    while start.elapsed() < budget.time && budget.iterations.is_none_or(|max| generated < max) {
        let input = mutator.next_input();
        generated += 1;
        if let Err(failure) = timed(&input) {
            fail(target, &input, &failure, &format!("generated input {generated} of seed {:#x}", budget.seed));
        }
    }
    Report { seeds: inputs.len(), generated, elapsed: start.elapsed(), slowest }
}

/// Runs the corpus entry `file` of `target`: what a regression test does.
pub fn replay(target: &Target, file: &str) {
    let path = corpus_dir(target.name).join(file);
    let input = std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    (target.check)(&input);
}

/// The committed seeds of `target`, by file name.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("no seed corpus at {}: {err}", dir.display()));
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| entry.expect("a readable corpus directory").path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            (path.strip_prefix(&dir).map(Path::to_path_buf).unwrap_or(path), bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "the seed corpus {} is empty", dir.display());
    seeds
}

pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// A property that did not hold: the panic's message and where it was
/// raised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    message: String,
    location: String,
}

thread_local! {
    /// Whether this thread's panics are being caught by [`try_check`]:
    /// they are reported once, shrunk, instead of printed at each try.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that records the panics [`try_check`]
/// catches and leaves every other panic to the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                let failure = Failure {
                    message: panic_message(info.payload()),
                    location: info.location().map_or_else(|| "an unknown place".to_owned(), ToString::to_string),
                };
                CAUGHT.set(Some(failure));
            } else {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

fn try_check(check: fn(&[u8]), input: &[u8]) -> Result<(), Failure> {
    CATCHING.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(|| check(input)));
    CATCHING.set(false);
    result.map_err(|_| {
        CAUGHT.take().unwrap_or_else(|| Failure { message: "a panic".into(), location: "an unknown place".into() })
    })
}

/// Shrinks, saves and reports a failing input.
fn fail(target: &Target, input: &[u8], failure: &Failure, what: &str) -> ! {
    let shrunk = shrink(target.check, input, failure);
    let dir = std::env::temp_dir().join("roomcast-fuzz").join(target.name);
    let name = format!("crash-{:016x}", fnv1a(&shrunk));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(&name), &shrunk))
        .map_or_else(|err| format!("not saved ({err})"), |()| format!("saved as {}", dir.join(&name).display()));
    panic!(
        "fuzz target {target} failed on {what}: {message} (at {location})\n\
         input, {len} bytes (shrunk from {original}): b\"{escaped}\"\n\
         {saved}; to keep it, copy it to fuzz/corpus/{target}/{name} and add a named test that replays it",
        target = target.name,
        message = failure.message,
        location = failure.location,
        len = shrunk.len(),
        original = input.len(),
        escaped = shrunk.escape_ascii(),
    )
}

/// The shortest input found, by removing chunks, that still fails at the
/// same place.
fn shrink(check: fn(&[u8]), input: &[u8], failure: &Failure) -> Vec<u8> {
    let start = Instant::now();
    let mut best = input.to_vec();
    let mut chunk = best.len() / 2;
    while chunk > 0 && start.elapsed() < SHRINK_TIME {
        let mut at = 0;
        while at < best.len() && start.elapsed() < SHRINK_TIME {
            let mut candidate = best.clone();
            candidate.drain(at..(at + chunk).min(best.len()));
            match try_check(check, &candidate) {
                Err(other) if other.location == failure.location => best = candidate,
                _ => at += chunk,
            }
        }
        chunk /= 2;
    }
    best
}

/// FNV-1a, 64 bits: a stable digest of an input (names saved inputs,
/// derives keys from inputs).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}
