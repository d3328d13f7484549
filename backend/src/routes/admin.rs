//! The admin surface's routes, on `--admin-listen`: the API behind the
//! admin key, the app's files and its `/admin` page without it (the page
//! asks for the key), and the same `recover` at the edge.

use std::convert::Infallible;
use std::path::PathBuf;

use http::header::{self, HeaderValue};
use http::StatusCode;
use serde::Deserialize;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::files::{app_index, static_files};
use super::rejection;
use crate::admin::{Admin, AdminError};
use crate::identity_control::BanRequest;
use crate::metrics::Metrics;

/// Largest body the admin API takes (a ban or a reason).
const MAX_BODY_BYTES: u64 = 4 * 1024;

/// Every route of the admin surface.
pub fn admin_routes(
    admin: Admin,
    static_dir: PathBuf,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let api = admin_key(admin.clone()).and(
        metrics(admin.clone())
            .or(drain(admin.clone()))
            .unify()
            .or(overview(admin.clone()))
            .unify()
            .or(identity(admin.clone()))
            .unify()
            .or(disconnect(admin.clone()))
            .unify()
            .or(bans(admin.clone()))
            .unify()
            .or(ban(admin.clone()))
            .unify()
            .or(lift(admin))
            .unify(),
    );
    let page = static_files(static_dir.clone()).or(app_index(static_dir, is_admin_page)).unify();
    // The admin surface's own requests are not the node's traffic.
    page.or(api).unify().recover(rejection::recovering(Metrics::new())).unify()
}

/// The app's `/admin` route and below, but not the API.
fn is_admin_page(path: &str) -> bool {
    path == "/admin" || (path.starts_with("/admin/") && !path.starts_with("/admin/api/"))
}

/// The admin key, checked before anything else of the API.
fn admin_key(admin: Admin) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |authorization: Option<String>| {
            let checked = admin.check(authorization.as_deref()).map_err(warp::reject::custom);
            async move { checked }
        })
        .untuple_one()
}

/// A JSON body of at most [`MAX_BODY_BYTES`], whatever its content type;
/// what does not parse is the client's (400, saying why).
fn json_body<T: serde::de::DeserializeOwned + Send>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY_BYTES).and(warp::body::bytes()).and_then(
        |body: bytes::Bytes| async move {
            serde_json::from_slice(&body).map_err(|err| warp::reject::custom(AdminError::BadBody(err.to_string())))
        },
    )
}

/// GET /metrics (admin): Prometheus text.
fn metrics(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics").and(warp::get()).map(move || {
        let mut response = Response::new(admin.metrics().into());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
        response
    })
}

/// POST /drain (admin): the node drains for a rolling restart, then stops.
fn drain(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("drain").and(warp::post()).map(move || {
        admin.drain();
        warp::reply::with_status("draining\n", StatusCode::ACCEPTED).into_response()
    })
}

/// GET /admin/api/overview (admin): every live node, the busiest groups,
/// the last minutes.
fn overview(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "api" / "overview").and(warp::get()).and_then(move || {
        let admin = admin.clone();
        async move {
            let overview = admin.overview().await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(warp::reply::json(&overview).into_response())
        }
    })
}

/// GET /admin/api/identities/{sub} (admin): its connections on every node,
/// its bans.
fn identity(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "api" / "identities" / String).and(warp::get()).and_then(move |sub: String| {
        let admin = admin.clone();
        async move {
            let view = admin.identity(&sub).await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(warp::reply::json(&view).into_response())
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectRequest {
    #[serde(default)]
    reason: String,
}

/// POST /admin/api/identities/{sub}/disconnect `{"reason": "…"}` (admin):
/// its connections close on every node with 4010.
fn disconnect(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "api" / "identities" / String / "disconnect").and(warp::post()).and(json_body()).and_then(
        move |sub: String, request: DisconnectRequest| {
            let admin = admin.clone();
            async move {
                let done = admin.disconnect(&sub, request.reason).await.map_err(warp::reject::custom)?;
                Ok::<_, Rejection>(warp::reply::json(&done).into_response())
            }
        },
    )
}

#[derive(serde::Serialize)]
struct BanList {
    bans: Vec<crate::ban::Ban>,
}

/// GET /admin/api/bans (admin): the bans in force.
fn bans(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "api" / "bans")
        .and(warp::get())
        .map(move || warp::reply::json(&BanList { bans: admin.bans() }).into_response())
}

/// POST /admin/api/bans `{"sub"?, "network"?, "duration_s", "reason"?}`
/// (admin): 201 with the ban, in force on every node.
fn ban(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "api" / "bans").and(warp::post()).and(json_body()).and_then(move |request: BanRequest| {
        let admin = admin.clone();
        async move {
            let ban = admin.ban(request).await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(warp::reply::with_status(warp::reply::json(&ban), StatusCode::CREATED).into_response())
        }
    })
}

/// DELETE /admin/api/bans/{id} (admin): 204, the ban lifted everywhere.
fn lift(admin: Admin) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("admin" / "api" / "bans" / String).and(warp::delete()).and_then(move |id: String| {
        let admin = admin.clone();
        async move {
            admin.lift(&id).await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(StatusCode::NO_CONTENT.into_response())
        }
    })
}
