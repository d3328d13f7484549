//! Every error a request can cause, pinned to its status, headers and
//! reason through warp's test requests (no sockets): one table row per
//! variant of our errors, and warp's own rejections through the filters
//! that make them.

use http::header::{CONNECTION, RETRY_AFTER, SEC_WEBSOCKET_VERSION, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use roomcast_shared::{DisplayName, GroupName, NameError};
use warp::test::RequestBuilder;
use warp::{Filter, Reply};

use super::*;
use crate::auth::TokenError;
use crate::history::HistoryError;

/// The headers whose presence an error decides; any other it must not set.
const DECIDED: [HeaderName; 4] = [WWW_AUTHENTICATE, RETRY_AFTER, SEC_WEBSOCKET_VERSION, CONNECTION];

/// `request` through `filter` and [`recover`]: status, decided headers, body.
async fn answer<F>(filter: F, request: RequestBuilder) -> (StatusCode, Vec<(HeaderName, String)>, String)
where
    F: Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static,
{
    let response = request.reply(&filter.recover(recovering(Metrics::new())).unify()).await;
    let headers = DECIDED
        .iter()
        .filter_map(|name| Some((name.clone(), response.headers().get(name)?.to_str().unwrap().to_owned())))
        .collect();
    (response.status(), headers, String::from_utf8(response.body().to_vec()).unwrap())
}

/// A route that refuses every request with what `error` makes.
fn refusing<E: warp::reject::Reject>(
    error: impl Fn() -> E + Clone + Send + Sync + 'static,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::any().and_then(move || {
        let rejection = warp::reject::custom(error());
        async move { Err::<Response, _>(rejection) }
    })
}

/// `error`'s answer to a plain GET, checked against the expected status
/// and headers, with its reason (and a newline) as the body.
async fn pins<E: warp::reject::Reject + std::fmt::Display>(
    error: impl Fn() -> E + Clone + Send + Sync + 'static,
    status: StatusCode,
    headers: &[(HeaderName, &str)],
) {
    let reason = format!("{}\n", error());
    let expected: Vec<_> = headers.iter().map(|(name, value)| (name.clone(), (*value).to_owned())).collect();
    let got = answer(refusing(error), warp::test::request()).await;
    assert_eq!(got, (status, expected, reason));
}

fn bad_group() -> NameError {
    "".parse::<GroupName>().unwrap_err()
}

fn bad_name() -> NameError {
    "\u{202e}".parse::<DisplayName>().unwrap_err()
}

const CHALLENGE: (HeaderName, &str) = (WWW_AUTHENTICATE, "Bearer");
const IN_A_MINUTE: (HeaderName, &str) = (RETRY_AFTER, "60");

#[tokio::test]
async fn access_errors() {
    pins(|| AccessError::Host, StatusCode::MISDIRECTED_REQUEST, &[]).await;
    pins(|| AccessError::Origin, StatusCode::FORBIDDEN, &[]).await;
}

#[tokio::test]
async fn auth_errors() {
    pins(|| AuthError::Missing, StatusCode::UNAUTHORIZED, &[CHALLENGE]).await;
    pins(|| AuthError::Invalid(TokenError::Expired), StatusCode::UNAUTHORIZED, &[CHALLENGE]).await;
    pins(|| AuthError::OtherClient, StatusCode::FORBIDDEN, &[]).await;
    pins(|| AuthError::GroupNotAllowed, StatusCode::FORBIDDEN, &[]).await;
}

#[tokio::test]
async fn identity_errors() {
    pins(|| IdentityError::Off, StatusCode::FORBIDDEN, &[]).await;
    pins(|| IdentityError::RateLimited, StatusCode::TOO_MANY_REQUESTS, &[IN_A_MINUTE]).await;
    pins(|| IdentityError::BadBody, StatusCode::BAD_REQUEST, &[]).await;
    pins(|| IdentityError::BadName(bad_name()), StatusCode::BAD_REQUEST, &[]).await;
    pins(|| IdentityError::Auth(AuthError::Missing), StatusCode::UNAUTHORIZED, &[CHALLENGE]).await;
    pins(|| IdentityError::Auth(AuthError::OtherClient), StatusCode::FORBIDDEN, &[]).await;
}

#[tokio::test]
async fn upgrade_errors() {
    for bad_request in [
        || UpgradeError::BadName(bad_group()),
        || UpgradeError::BadDisplayName(bad_name()),
        || UpgradeError::BadSince,
        || UpgradeError::BadEpoch,
        || UpgradeError::NotWebSocket,
        || UpgradeError::MissingKey,
        || UpgradeError::UnsupportedSubprotocol,
        || UpgradeError::NoUpgrade,
    ] {
        pins(bad_request, StatusCode::BAD_REQUEST, &[]).await;
    }
    pins(|| UpgradeError::UnsupportedVersion, StatusCode::UPGRADE_REQUIRED, &[(SEC_WEBSOCKET_VERSION, "13")]).await;
    pins(|| UpgradeError::ShuttingDown, StatusCode::SERVICE_UNAVAILABLE, &[]).await;
}

#[tokio::test]
async fn publish_errors() {
    pins(|| PublishError::NoKey, StatusCode::UNAUTHORIZED, &[CHALLENGE]).await;
    pins(|| PublishError::Off, StatusCode::NOT_FOUND, &[]).await;
    pins(|| PublishError::BadGroup(bad_group()), StatusCode::BAD_REQUEST, &[]).await;
    pins(|| PublishError::BadBody("not JSON".into()), StatusCode::BAD_REQUEST, &[]).await;
    pins(|| PublishError::BadKey, StatusCode::BAD_REQUEST, &[]).await;
    pins(|| PublishError::TooLong(8192), StatusCode::PAYLOAD_TOO_LARGE, &[]).await;
    pins(|| PublishError::KeyReused, StatusCode::CONFLICT, &[]).await;
    pins(|| PublishError::Unavailable, StatusCode::SERVICE_UNAVAILABLE, &[(RETRY_AFTER, "1")]).await;
    pins(|| PublishError::OverQuota, StatusCode::INSUFFICIENT_STORAGE, &[]).await;
}

#[tokio::test]
async fn identity_control_errors() {
    for bad_request in [|| ControlError::BadSub, || ControlError::BadId, || ControlError::BadRequest("no".into())] {
        pins(bad_request, StatusCode::BAD_REQUEST, &[]).await;
    }
    pins(|| ControlError::NoSuchBan, StatusCode::NOT_FOUND, &[]).await;
    pins(|| ControlError::TooManyBans, StatusCode::CONFLICT, &[]).await;
    let unavailable = || ControlError::Unavailable(HistoryError::Task("gone".into()));
    pins(unavailable, StatusCode::SERVICE_UNAVAILABLE, &[]).await;
}

#[tokio::test]
async fn admin_errors() {
    pins(|| AdminError::NoKey, StatusCode::UNAUTHORIZED, &[CHALLENGE]).await;
    pins(|| AdminError::BadBody("expected a value".into()), StatusCode::BAD_REQUEST, &[]).await;
    pins(|| AdminError::Control(ControlError::NoSuchBan), StatusCode::NOT_FOUND, &[]).await;
}

/// A ban answers in JSON, wherever a token or an address is refused for
/// it (the app reads until when).
#[tokio::test]
async fn a_ban_answers_in_json() {
    let banned = || AuthError::Banned { until_ms: 42, reason: "spam".into() };
    for routes in [refusing(banned).boxed(), refusing(move || IdentityError::Auth(banned())).boxed()] {
        let (status, _, body) = answer(routes, warp::test::request()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::json!({ "error": "banned", "until_ms": 42, "reason": "spam" }));
    }
}

#[tokio::test]
async fn too_many_new_groups() {
    pins(|| TooManyNewGroups, StatusCode::TOO_MANY_REQUESTS, &[IN_A_MINUTE]).await;
}

/// A refused socket's request: when to come back, and the socket closes.
#[tokio::test]
async fn refusals() {
    let closes = (CONNECTION, "close");
    for unavailable in [|| Refusal::Full, || Refusal::TooManyFromAddress, || Refusal::StoreUnavailable] {
        pins(unavailable, StatusCode::SERVICE_UNAVAILABLE, &[(RETRY_AFTER, "5"), closes.clone()]).await;
    }
    pins(|| Refusal::TooOften, StatusCode::TOO_MANY_REQUESTS, &[(RETRY_AFTER, "5"), closes]).await;
}

#[tokio::test]
async fn api_errors() {
    pins(|| ApiError::BadGroup(bad_group()), StatusCode::BAD_REQUEST, &[]).await;
    pins(|| ApiError::BadNumber("before"), StatusCode::BAD_REQUEST, &[]).await;
    pins(|| ApiError::BeforeAndAfter, StatusCode::BAD_REQUEST, &[]).await;
    let unavailable = || ApiError::Unavailable(HistoryError::Task("gone".into()));
    pins(unavailable, StatusCode::SERVICE_UNAVAILABLE, &[]).await;
}

fn ok() -> Response {
    "ok".into_response()
}

/// warp's own rejections, made by the filters that make them.
#[tokio::test]
async fn warps_rejections() {
    let no_route = warp::path("here").map(ok);
    let got = answer(no_route, warp::test::request().path("/elsewhere")).await;
    assert_eq!(got, (StatusCode::NOT_FOUND, vec![], "not found\n".to_owned()));

    let host = warp::header::<String>("host").map(|_| ok());
    let request = warp::test::request().header("host", HeaderValue::from_bytes(b"\xffx").unwrap());
    let got = answer(host, request).await;
    assert_eq!(got, (StatusCode::BAD_REQUEST, vec![], "the host header must be text\n".to_owned()));

    #[derive(serde::Deserialize)]
    struct Numbered {
        #[allow(dead_code)] // only its parsing matters
        n: u64,
    }
    let query = warp::query::<Numbered>().map(|_| ok());
    let got = answer(query, warp::test::request().path("/?n=x")).await;
    assert_eq!(got, (StatusCode::BAD_REQUEST, vec![], "invalid query string\n".to_owned()));

    let limited = warp::body::content_length_limit(4).map(ok);
    let got = answer(limited, warp::test::request().method("POST").body("too long")).await;
    assert_eq!(got, (StatusCode::PAYLOAD_TOO_LARGE, vec![], "request body too large\n".to_owned()));
    let got = answer(limited, warp::test::request().method("POST")).await;
    assert_eq!(got, (StatusCode::LENGTH_REQUIRED, vec![], "a Content-Length is required\n".to_owned()));

    let post = warp::post().map(ok);
    let got = answer(post, warp::test::request()).await;
    assert_eq!(got, (StatusCode::METHOD_NOT_ALLOWED, vec![], "method not allowed\n".to_owned()));
}

/// A request two routes refuse gets our error before warp's `405`.
#[tokio::test]
async fn our_errors_come_before_warps() {
    let routes = warp::post().map(ok).or(refusing(|| AuthError::Missing)).unify();
    let got = answer(routes, warp::test::request()).await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED);
}

/// A rejection nothing here knows is the only `500`.
#[tokio::test]
async fn an_unknown_rejection_is_an_internal_error() {
    #[derive(Debug)]
    struct Unknown;
    impl warp::reject::Reject for Unknown {}
    let got = answer(refusing(|| Unknown), warp::test::request()).await;
    assert_eq!(got, (StatusCode::INTERNAL_SERVER_ERROR, vec![], "internal error\n".to_owned()));
}
