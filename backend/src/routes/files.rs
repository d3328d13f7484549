//! The built single-page app's files, on the public address and on the
//! admin one: each file as it is, and the app's `index.html` for its
//! client-side routes.

use std::path::PathBuf;

use http::header::{self, HeaderValue};
use warp::filters::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// GET /{file} from the built single-page app.
pub fn static_files(dir: PathBuf) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    // A path the file system refuses to open (a NUL byte, a name too
    // long, a file taken for a directory) is the client's: not found, not
    // warp's file-open error, which would be a 500 and an error line in
    // the log per request.
    let files = warp::fs::dir(dir).or_else(|rejection: Rejection| async move {
        if !rejection.is_not_found() {
            tracing::debug!(?rejection, "a static path that cannot be opened");
        }
        Err::<(warp::fs::File,), _>(warp::reject::not_found())
    });
    warp::get().and(files).map(|file: warp::fs::File| {
        let mut response = file.into_response();
        // trunk names assets by content hash; index.html is not one of them.
        let cache = if response_is_html(&response) { "no-cache" } else { "public, max-age=31536000, immutable" };
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        response
    })
}

/// GET /room/{group} and any other client-side route: the app's index.html.
pub fn spa_fallback(dir: PathBuf) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    // API and socket paths never fall back to the app, so that their own
    // errors are what the client sees.
    app_index(dir, |path| !["/ws/", "/api/"].iter().any(|prefix| path.starts_with(prefix)))
}

/// The app's index.html for the paths `serves` takes.
pub fn app_index(
    dir: PathBuf,
    serves: fn(&str) -> bool,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let index = dir.join("index.html");
    warp::get()
        .and(warp::path::full())
        .and_then(move |path: FullPath| async move {
            if serves(path.as_str()) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
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
