//! Waiting for the operator's stop signal.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT (Ctrl-C) and SIGTERM, registered: from then on they stop the
/// server gracefully instead of ending the process at once.
#[derive(Debug)]
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Registers both now. `main` does this before it listens, so that a
    /// signal sent as soon as the port answers is a graceful stop (it once
    /// ended the process between the listen and the start-up warnings).
    pub fn register() -> std::io::Result<Self> {
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Resolves on the first of them.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("Ctrl-C received"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
}
