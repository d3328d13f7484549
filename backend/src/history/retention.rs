//! Applies the retention policy in the background, off the write path.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store::{Retention, Store};
use super::unix_millis;

/// Prunes every `interval` until `shutdown`. It runs whatever the
/// retention: the ids of messages removed under an earlier configuration
/// (or by the size limit) are still forgotten once a dedup window old.
pub async fn run(store: Arc<dyn Store>, retention: Retention, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let store = store.clone();
        let now = unix_millis();
        match tokio::task::spawn_blocking(move || store.prune(&retention, now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "retention removed old messages"),
            Ok(Err(err)) => tracing::error!(%err, "retention failed"),
            Err(err) => tracing::error!(%err, "retention task failed"),
        }
    }
}
