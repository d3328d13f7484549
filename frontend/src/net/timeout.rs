//! Waiting for an answer only so long.

use std::future::Future;

use futures_util::future::{select, Either};
use gloo_timers::future::TimeoutFuture;

/// What `future` gives, if it gives it within `ms`; `None` after that (the
/// future is dropped).
pub async fn within<T>(ms: u32, future: impl Future<Output = T>) -> Option<T> {
    match select(Box::pin(future), TimeoutFuture::new(ms)).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}
