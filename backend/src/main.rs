use anyhow::Context;
use roomcast_backend::config::LogFormat;
use roomcast_backend::{check_config, net, shutdown, Config, Server, StartError};
use tracing_subscriber::EnvFilter;

/// Logs at info, except hyper's per-connection errors as warp reports them
/// (resets and cancelled keep-alive connections at shutdown are routine).
const DEFAULT_LOG: &str = "info,warp::server=off";

/// The exit status of a server that stopped by itself (its backend failed):
/// `EX_SOFTWARE`, after every connection was closed as on SIGTERM.
const EXIT_FAILED: i32 = 70;

/// Logs to stderr, as people read them or (`json`) one object per line.
fn logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A refused configuration is one line and exit code 2, before anything
    // runs (clap's own message without its hint line).
    let (config, matches) = match Config::load_with_sources() {
        Ok(loaded) => loaded,
        Err(err) if err.use_stderr() => {
            let rendered = err.render().to_string();
            eprintln!("{}", rendered.lines().next().unwrap_or("error: invalid arguments"));
            std::process::exit(2);
        }
        Err(help_or_version) => help_or_version.exit(),
    };
    logging(config.log_format);
    if config.check_config {
        let report = check_config::check(&config, &matches);
        print!("{}", report.text);
        std::process::exit(if report.ok { 0 } else { 2 });
    }
    if let Err(err) = config.validate() {
        eprintln!("error: {err}");
        std::process::exit(2);
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if net::raise_fd_limit().is_none() {
        tracing::warn!("cannot read the open-file limit; --max-connections defaults to 960");
    }
    if !config.static_dir.join("index.html").is_file() {
        tracing::warn!(dir = %config.static_dir.display(), "no built app found; see README.md to build it");
    }
    let stop = shutdown::StopSignals::register().context("cannot listen for stop signals")?;
    let server = Server::bind(config.clone()).await.map_err(|err| match err {
        // Only a listen failure is about the address; every other one
        // (the store, Redis, the secret) says itself what failed.
        StartError::Listen(err) => anyhow::Error::new(err).context(format!("cannot listen on {}", config.listen)),
        err => anyhow::Error::new(err),
    })?;
    tracing::info!("listening on http://{}", server.local_addr());
    let drain = tokio::select! {
        () = stop.recv() => (!config.drain_period.is_zero()).then_some(config.drain_period),
        // Asked by the admin surface: over --drain-period, or 10 s.
        () = server.drain_requested() => Some(roomcast_backend::drain::asked_period(config.drain_period)),
        () = server.failed() => None,
    };
    // A rolling restart's drain spreads the closes over the period.
    let stopped = match drain {
        Some(period) => server.drain_then_stop(period).await,
        None => server.stop().await,
    };
    match stopped {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(())
        }
        // Its clients recover on another node with `since`; a supervisor
        // sees the failure (EX_SOFTWARE).
        Err(failure) => {
            tracing::error!(%failure, "stopped");
            std::process::exit(EXIT_FAILED);
        }
    }
}
