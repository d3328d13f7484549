//! `roomcast-testkit redis`: starts a [`LocalRedis`], prints its URL on
//! stdout once it answers, and runs until SIGTERM, SIGINT or SIGHUP; then it
//! stops the redis-server and removes its files. For `scripts/cluster.sh`
//! and the browser tests, which start no redis-server of their own.

use std::io::Write;
use std::process::ExitCode;

use roomcast_testkit::LocalRedis;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    if std::env::args().skip(1).collect::<Vec<_>>() != ["redis"] {
        eprintln!("usage: roomcast-testkit redis");
        return ExitCode::from(2);
    }
    let redis = match LocalRedis::start() {
        Ok(redis) => redis,
        Err(err) => {
            eprintln!("roomcast-testkit: {err}");
            return ExitCode::FAILURE;
        }
    };
    let announced = writeln!(std::io::stdout(), "{}", redis.url()).and_then(|()| std::io::stdout().flush());
    if let Err(err) = announced.and_then(|()| until_stopped()) {
        eprintln!("roomcast-testkit: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
    // `redis` drops here: the server is killed and its files removed.
}

fn until_stopped() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
            _ = hangup.recv() => {}
        }
        Ok(())
    })
}
