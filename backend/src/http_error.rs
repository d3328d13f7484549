//! How a refused request is answered: every error a request can cause
//! implements [`HttpError`] (its status, the headers that go with it, a
//! plain-text reason), here for warp's own rejections and in each module
//! for its own errors. `routes::recover` is the one place that turns a
//! rejection into the response of the error it carries.

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::metrics::Limited;

/// An error a request can cause, answered before any upgrade.
pub trait HttpError: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static {
    fn status(&self) -> StatusCode;

    /// The headers beside the reason; by default what the status itself
    /// calls for (see [`headers_for`]).
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        headers_for(self.status())
    }

    /// The rate limit that refused the request, if one did (counted in
    /// the metrics by kind).
    fn limited(&self) -> Option<Limited> {
        None
    }

    /// The reason, one line of plain text.
    fn reason(&self) -> String {
        self.to_string()
    }

    /// The whole answer: by default [`plain_response`].
    fn response(&self) -> Response {
        plain_response(self)
    }
}

/// The status, the headers, the reason and a newline.
pub fn plain_response<E: HttpError + ?Sized>(err: &E) -> Response {
    let mut response = warp::reply::with_status(err.reason() + "\n", err.status()).into_response();
    response.headers_mut().extend(err.headers());
    response
}

/// What a status calls for: `401` a challenge, `426` the version to
/// upgrade to, `429` when to try again.
pub fn headers_for(status: StatusCode) -> Vec<(HeaderName, HeaderValue)> {
    match status {
        StatusCode::UNAUTHORIZED => vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        StatusCode::UPGRADE_REQUIRED => vec![(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))],
        StatusCode::TOO_MANY_REQUESTS => vec![(header::RETRY_AFTER, HeaderValue::from_static("60"))],
        _ => Vec::new(),
    }
}

/// No route has this path (or a static file is not there).
#[derive(Debug, thiserror::Error)]
#[error("not found")]
pub struct NotFound;

impl HttpError for NotFound {
    fn status(&self) -> StatusCode {
        StatusCode::NOT_FOUND
    }
}

/// A rejection nothing here knows: a bug, the only `500`.
#[derive(Debug, thiserror::Error)]
#[error("internal error")]
pub struct Unhandled;

impl HttpError for Unhandled {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// A header read as text (Host, Origin, Authorization, Idempotency-Key)
/// that holds other bytes: the client's mistake, not an internal error (nor
/// an error line in the log per request).
impl HttpError for warp::reject::InvalidHeader {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn reason(&self) -> String {
        format!("the {} header must be text", self.name())
    }
}

impl HttpError for warp::reject::InvalidQuery {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn reason(&self) -> String {
        "invalid query string".to_owned()
    }
}

impl HttpError for warp::reject::PayloadTooLarge {
    fn status(&self) -> StatusCode {
        StatusCode::PAYLOAD_TOO_LARGE
    }

    fn reason(&self) -> String {
        "request body too large".to_owned()
    }
}

impl HttpError for warp::reject::LengthRequired {
    fn status(&self) -> StatusCode {
        StatusCode::LENGTH_REQUIRED
    }

    fn reason(&self) -> String {
        "a Content-Length is required".to_owned()
    }
}

impl HttpError for warp::reject::MethodNotAllowed {
    fn status(&self) -> StatusCode {
        StatusCode::METHOD_NOT_ALLOWED
    }

    fn reason(&self) -> String {
        "method not allowed".to_owned()
    }
}
