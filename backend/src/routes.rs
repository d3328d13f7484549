//! The HTTP surface: one function per route, combined by [`routes`], with a
//! single [`recover`](warp::Filter::recover) at the edge that turns every
//! rejection into a plain-text HTTP error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;

use http::header::{self, HeaderValue};
use http::StatusCode;
use hyper::upgrade::OnUpgrade;
use warp::filters::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::api::{self, ApiError};
use crate::state::AppState;
use crate::upgrade::{self, UpgradeError};

/// All routes of the server.
pub fn routes(state: AppState, static_dir: PathBuf) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    websocket(state.clone())
        .or(healthz(state.clone()))
        .unify()
        .or(messages(state))
        .unify()
        .or(static_files(static_dir.clone()))
        .unify()
        .or(spa_fallback(static_dir))
        .unify()
        .recover(handle_rejection)
        .unify()
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// GET /ws/{group}/{client_id}
fn websocket(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ws" / String / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(with_state(state))
        .and_then(|group: String, client: String, query, headers, on_upgrade, state: AppState| async move {
            upgrade::accept(&group, &client, &query, &headers, on_upgrade, &state).map_err(warp::reject::custom)
        })
}

/// GET /api/groups/{group}/messages[?before={seq}|?after={seq}][&limit={n}]
fn messages(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "groups" / String / "messages")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_state(state))
        .and_then(|group: String, query, state: AppState| async move {
            api::messages(&group, &query, &state)
                .await
                .map(|page| warp::reply::json(&page).into_response())
                .map_err(warp::reject::custom)
        })
}

/// GET /healthz
fn healthz(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz").and(warp::get()).and(with_state(state)).map(|state: AppState| {
        let stats = state.registry.stats();
        warp::reply::json(&serde_json::json!({
            "status": "ok",
            "connections": stats.connections,
            "groups": stats.groups,
        }))
        .into_response()
    })
}

/// GET /{file} from the built single-page app.
fn static_files(dir: PathBuf) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::get().and(warp::fs::dir(dir)).map(|file: warp::fs::File| {
        let mut response = file.into_response();
        // trunk names assets by content hash; index.html is not one of them.
        let cache = if response_is_html(&response) { "no-cache" } else { "public, max-age=31536000, immutable" };
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        response
    })
}

/// GET /room/{group} and any other client-side route: the app's index.html.
fn spa_fallback(dir: PathBuf) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let index = dir.join("index.html");
    warp::get()
        .and(warp::path::full())
        .and_then(|path: FullPath| async move {
            // API and socket paths never fall back to the app, so that their
            // own errors are what the client sees.
            let reserved = ["/ws/", "/api/"].iter().any(|prefix| path.as_str().starts_with(prefix));
            if reserved {
                Err(warp::reject::not_found())
            } else {
                Ok(())
            }
        })
        .untuple_one()
        .and(warp::fs::file(index))
        .map(|file: warp::fs::File| {
            let mut response = file.into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        })
}

fn response_is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

/// The one place rejections become HTTP responses.
async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, message) = if let Some(err) = rejection.find::<UpgradeError>() {
        (err.status(), err.to_string())
    } else if let Some(err) = rejection.find::<ApiError>() {
        (err.status(), err.to_string())
    } else if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not found".to_owned())
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "invalid query string".to_owned())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed".to_owned())
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
    };
    let mut response = warp::reply::with_status(message + "\n", status).into_response();
    if status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    Ok(response)
}
