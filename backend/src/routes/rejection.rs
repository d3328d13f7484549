//! The one place a rejection becomes an HTTP response: the first error it
//! carries, in [`PRECEDENCE`] order, answers with its own status, headers
//! and reason ([`HttpError`]).

use std::convert::Infallible;
use std::sync::Arc;

use warp::reply::Response;
use warp::Rejection;

use super::sessions::SessionError;
use crate::access::AccessError;
use crate::admin::AdminError;
use crate::api::ApiError;
use crate::auth::AuthError;
use crate::http_error::{HttpError, NotFound, Unhandled};
use crate::identities::IdentityError;
use crate::identity_control::ControlError;
use crate::metrics::Metrics;
use crate::net::admission::Refusal;
use crate::new_groups::TooManyNewGroups;
use crate::presence_api::PresenceApiError;
use crate::publish_api::PublishError;
use crate::upgrade::UpgradeError;

type Find = for<'a> fn(&'a Rejection) -> Option<&'a dyn HttpError>;

fn find<T: HttpError>(rejection: &Rejection) -> Option<&dyn HttpError> {
    rejection.find::<T>().map(|err| err as &dyn HttpError)
}

/// Which error answers when routes refused a request for several reasons:
/// ours before warp's, so that, say, a GET of the publish path gets the
/// history API's `401` rather than the publish route's `405`.
const PRECEDENCE: [Find; 17] = [
    find::<AdminError>,
    find::<AccessError>,
    find::<AuthError>,
    find::<IdentityError>,
    find::<UpgradeError>,
    find::<SessionError>,
    find::<PublishError>,
    find::<ControlError>,
    find::<PresenceApiError>,
    find::<TooManyNewGroups>,
    find::<Refusal>,
    find::<ApiError>,
    find::<warp::reject::InvalidHeader>,
    find::<warp::reject::InvalidQuery>,
    find::<warp::reject::PayloadTooLarge>,
    find::<warp::reject::LengthRequired>,
    find::<warp::reject::MethodNotAllowed>,
];

/// [`recover`] as warp's `recover` takes it, counting in `metrics`.
pub fn recovering(
    metrics: Arc<Metrics>,
) -> impl Fn(Rejection) -> std::future::Ready<Result<Response, Infallible>> + Clone + Send + Sync + 'static {
    move |rejection| std::future::ready(recover(&rejection, &metrics))
}

/// Every rejection's answer: a client's request never gets `500`, only a
/// rejection nothing here knows (a bug, logged). A refusal by a rate limit
/// is counted in `metrics`.
pub fn recover(rejection: &Rejection, metrics: &Metrics) -> Result<Response, Infallible> {
    let response = match PRECEDENCE.iter().find_map(|find| find(rejection)) {
        Some(err) => {
            if let Some(kind) = err.limited() {
                metrics.limited(kind);
            }
            err.response()
        }
        None if rejection.is_not_found() => NotFound.response(),
        None => {
            tracing::error!(?rejection, "unhandled rejection");
            Unhandled.response()
        }
    };
    Ok(response)
}

#[cfg(test)]
mod tests;
