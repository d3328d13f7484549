//! The HTTP API: history pages, back for scrollback and forward for catching
//! up.

use std::collections::HashMap;

use http::StatusCode;
use roomcast_shared::{limits, GroupName, MessagePage, NameError};

use crate::history::{History, HistoryError, Range};
use crate::http_error::HttpError;

/// Why an API request failed (HTTP 400 or 503).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    BadGroup(#[from] NameError),
    #[error("{0} must be a non-negative integer")]
    BadNumber(&'static str),
    #[error("before and after cannot be used together")]
    BeforeAndAfter,
    #[error("history unavailable")]
    Unavailable(#[source] HistoryError),
}

impl warp::reject::Reject for ApiError {}

impl HttpError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Up to `limit` messages (default 50, at most 200, and at most 1 MiB of
/// them), oldest first: before `before` (default: the latest), or after
/// `after`, never both.
pub async fn messages(
    group: &str,
    query: &HashMap<String, String>,
    history: &History,
) -> Result<MessagePage, ApiError> {
    let group: GroupName = group.parse()?;
    let number = |name: &'static str| {
        query.get(name).map(|value| value.parse::<u64>().map_err(|_| ApiError::BadNumber(name))).transpose()
    };
    let from = match (number("before")?, number("after")?) {
        (before, None) => Range::Before(before.unwrap_or(u64::MAX)),
        (None, Some(after)) => Range::After(after),
        (Some(_), Some(_)) => return Err(ApiError::BeforeAndAfter),
    };
    let limit = number("limit")?.map_or(limits::HISTORY_PAGE, |n| n as usize).clamp(1, limits::MAX_HISTORY_PAGE);
    let (messages, has_more) = history.page(group, from, limit).await.map_err(|err| {
        tracing::error!(%err, "cannot read history");
        ApiError::Unavailable(err)
    })?;
    Ok(MessagePage { messages, has_more })
}
