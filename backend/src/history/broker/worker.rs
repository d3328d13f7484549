//! A broker's own thread (Redis: the subscriber), which either runs until
//! it is told to stop or fails and says why; the server then shuts down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// Why a broker stopped delivering to this node.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// A bug (the panic hook has printed it). Carrying on could leave
    /// members a number short (counted as delivered, never sent) on a node
    /// that still looks ready.
    #[error("the delivery thread panicked")]
    Panicked,
    /// Refused for good (e.g. no permission to listen): the node would be
    /// deaf for ever.
    #[error("delivery refused: {0}")]
    Refused(String),
}

/// A running worker thread; told to stop when dropped (a server that
/// failed to start leaves no thread behind).
#[derive(Debug)]
pub struct Worker {
    stop: Arc<AtomicBool>,
    /// Taken by [`stop`](Self::stop).
    thread: Option<JoinHandle<()>>,
    /// Gone once [`failed`](Self::failed) has resolved or the thread ended well.
    failure: Option<oneshot::Receiver<DeliveryError>>,
}

impl Worker {
    /// Runs `work` on a thread named `name`; `work` returns once the flag
    /// it is given is set, or with why it cannot go on. A panic counts as
    /// a failure.
    pub fn spawn(
        name: &str,
        work: impl FnOnce(&AtomicBool) -> Result<(), DeliveryError> + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (report, failure) = oneshot::channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| work(&flag))).unwrap_or(Err(DeliveryError::Panicked));
            if let Err(err) = outcome {
                let _ = report.send(err);
            }
        })?;
        Ok(Self { stop, thread: Some(thread), failure: Some(failure) })
    }

    /// Resolves with why the worker failed; never, if it does not.
    /// Cancel-safe: dropped before it resolves, it can be called again.
    pub async fn failed(&mut self) -> DeliveryError {
        if let Some(failure) = self.failure.as_mut() {
            let outcome = failure.await;
            self.failure = None;
            if let Ok(err) = outcome {
                return err;
            }
        }
        std::future::pending().await
    }

    /// Tells it to stop and waits until it has.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else { return };
        if tokio::task::spawn_blocking(move || thread.join()).await.is_err() {
            tracing::error!("a delivery thread could not be joined");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
