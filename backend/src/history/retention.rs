//! Applies the retention policy in the background, off the write path.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use roomcast_shared::GroupName;

use super::store::{Retention, Store};
use crate::clock::unix_millis;

/// Whether anyone is in a group (on this node).
pub type Occupied = Arc<dyn Fn(&GroupName) -> bool + Send + Sync>;

/// Prunes every `interval` until `shutdown`. It runs whatever the
/// retention: the ids of messages removed under an earlier configuration
/// (or by the size limit) are still forgotten once a dedup window old.
/// With `group_idle_age`, groups idle that long that `occupied` says
/// nobody is in go too.
pub async fn run(
    store: Arc<dyn Store>,
    retention: Retention,
    interval: Duration,
    occupied: Occupied,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (pruned, now) = (store.clone(), unix_millis());
        match tokio::task::spawn_blocking(move || pruned.prune(&retention, now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "retention removed old messages"),
            Ok(Err(err)) => tracing::error!(%err, "retention failed"),
            Err(err) => tracing::error!(%err, "retention task failed"),
        }
        let Some(idle_age) = retention.group_idle_age else { continue };
        let (store, occupied) = (store.clone(), occupied.clone());
        let idle_since = now.saturating_sub(idle_age.as_millis() as u64);
        match tokio::task::spawn_blocking(move || store.remove_idle_groups(idle_since, &*occupied)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "removed idle groups"),
            Ok(Err(err)) => tracing::error!(%err, "removing idle groups failed"),
            Err(err) => tracing::error!(%err, "removing idle groups failed"),
        }
    }
}
