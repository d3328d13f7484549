//! A group's presence for the server side (`GET
//! /api/groups/{group}/presence`, with the API key): the counts and up to
//! `limit` people, in the order members' snapshots list them. Answered
//! from this node's view when it has members in the group, else from the
//! presence store (live nodes only).

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use roomcast_shared::limits::PRESENCE_LISTED;
use roomcast_shared::{GroupName, NameError, PresenceCount, PresentMember};
use serde::Serialize;

use crate::http_error::HttpError;
use crate::presence::{LookupError, Presence};

/// Most people one answer lists.
pub const MAX_LIMIT: usize = 1_000;

/// Why a presence lookup was not answered.
#[derive(Debug, thiserror::Error)]
pub enum PresenceApiError {
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("limit must be a number from 0 to {MAX_LIMIT}")]
    BadLimit,
    #[error("presence cannot be read now; try again")]
    Unavailable(#[source] LookupError),
}

impl warp::reject::Reject for PresenceApiError {}

impl HttpError for PresenceApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadName(_) | Self::BadLimit => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct GroupPresence {
    pub group: GroupName,
    pub count: PresenceCount,
    /// Up to `limit` people (default [`PRESENCE_LISTED`]), whether or not
    /// the group is above the listing threshold for its members.
    pub members: Vec<PresentMember>,
}

/// `group`'s presence, as `query` (`limit`) asks.
pub async fn lookup(
    presence: Arc<Presence>,
    group: &str,
    query: &HashMap<String, String>,
) -> Result<GroupPresence, PresenceApiError> {
    let group: GroupName = group.parse()?;
    let limit = match query.get("limit") {
        None => PRESENCE_LISTED,
        Some(limit) => limit.parse().ok().filter(|limit| *limit <= MAX_LIMIT).ok_or(PresenceApiError::BadLimit)?,
    };
    let asked = group.clone();
    // The store may be Redis: off the async threads.
    let found = tokio::task::spawn_blocking(move || presence.lookup(&asked, limit))
        .await
        .expect("a presence lookup does not panic")
        .map_err(PresenceApiError::Unavailable)?;
    let (count, members) = found;
    Ok(GroupPresence { group, count, members })
}
