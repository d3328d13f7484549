//! The HTTP surface: one function per route, combined by [`routes`], with a
//! single [`recover`](warp::Filter::recover) at the edge ([`rejection`])
//! that turns every rejection into a plain-text HTTP error.

mod admin;
mod extract;
mod files;
mod gate;
mod rejection;
mod sessions;

pub use admin::admin_routes;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use hyper::upgrade::OnUpgrade;
use warp::filters::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::access::Access;
use crate::api;
use crate::auth::{self, Auth};
use crate::drain::Drain;
use crate::history::sequencer::Sequencer;
use crate::history::History;
use crate::identities::{self, IdentityError, Issuer};
use crate::identity_control::IdentityControl;
use crate::net::client_ip::TrustedProxies;
use crate::net::Remote;
use crate::presence::Presence;
use crate::presence_api;
use crate::publish_api;
use crate::registry::Registry;
use crate::state::AppState;
use crate::stripped_upgrades::StrippedUpgrades;
use crate::upgrade::{self, UpgradeError};
use extract::{client_ip, with};
use gate::{Gate, Knock, Passed};

/// All routes of the server, behind the Host and Origin checks.
pub fn routes(state: AppState, static_dir: PathBuf) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let AppState {
        registry,
        history,
        upgrades,
        auth,
        access: hosts,
        issuer,
        admission,
        proxies,
        api_key,
        identities,
        new_groups,
        drain,
        metrics,
        polls,
    } = state;
    let sequencer = upgrades.context.sequencer.clone();
    let presence = upgrades.presence.clone();
    let max_message_bytes = upgrades.context.settings.max_message_bytes;
    let stripped = Arc::new(StrippedUpgrades::default());
    let gate = Gate {
        auth: auth.clone(),
        upgrades,
        admission,
        proxies: proxies.clone(),
        history: history.clone(),
        new_groups,
        stripped: stripped.clone(),
    };
    access(hosts)
        .and(note_forwarding(proxies.clone()))
        .and(
            websocket(gate.clone())
                .or(sessions::routes(gate, polls))
                .unify()
                .or(healthz(registry))
                .unify()
                .or(readyz(history.clone(), proxies.clone(), drain))
                .unify()
                .or(publish(api_key.clone(), sequencer, max_message_bytes))
                .unify()
                .or(revoke_identity(api_key.clone(), identities.clone()))
                .unify()
                .or(group_presence(api_key.clone(), presence))
                .unify()
                .or(messages(auth.clone(), history, api_key))
                .unify()
                .or(create_identity(issuer.clone(), auth.clone(), proxies.clone()))
                .unify()
                .or(renew_identity(issuer, auth.clone(), proxies.clone()))
                .unify()
                .or(my_identity(auth.clone(), proxies.clone()))
                .unify()
                .or(my_transport(auth, proxies, stripped))
                .unify()
                .or(files::static_files(static_dir.clone()))
                .unify()
                .or(files::spa_fallback(static_dir))
                .unify(),
        )
        .recover(rejection::recovering(metrics))
        .unify()
}

/// Every request: `Host` first; then, on the socket and API paths, `Origin`.
fn access(access: Arc<Access>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    // Two header values, not a copy of every header: during a storm of
    // handshakes, short-lived copies fragment the heap that the long-lived
    // connections are allocated from.
    warp::path::full()
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("origin"))
        .and_then(move |path: FullPath, host: Option<String>, origin: Option<String>| {
            let cross_origin_matters = ["/ws/", "/api/"].iter().any(|prefix| path.as_str().starts_with(prefix));
            let origin = origin.filter(|_| cross_origin_matters);
            let checked = access.check(host.as_deref(), origin.as_deref()).map_err(warp::reject::custom);
            async move { checked }
        })
        .untuple_one()
}

/// Header presence only: nothing is copied, and any value counts.
struct Present;

impl std::str::FromStr for Present {
    type Err = Infallible;

    fn from_str(_: &str) -> Result<Self, Self::Err> {
        Ok(Self)
    }
}

/// Every request but the probes: notes a trusted proxy's request that came
/// without `X-Forwarded-For` (see [`TrustedProxies::note_request`]).
fn note_forwarding(proxies: Arc<TrustedProxies>) -> impl Filter<Extract = (), Error = Infallible> + Clone {
    // A value that is not text is still a header sent.
    let forwarded = warp::header::optional::<Present>("x-forwarded-for").or(warp::any().map(|| Some(Present))).unify();
    warp::path::full()
        .and(warp::ext::optional::<Remote>())
        .and(forwarded)
        .map(move |path: FullPath, remote: Option<Remote>, forwarded: Option<Present>| {
            // Health probes come from the proxy or a load balancer itself,
            // on behalf of no client.
            let probe = ["/healthz", "/readyz"].contains(&path.as_str());
            if let Some(remote) = remote.filter(|_| !probe) {
                proxies.note_request(remote.addr.ip(), forwarded.is_some());
            }
        })
        .untuple_one()
}

/// GET /ws/{group}/{client_id}?token=…[&name=…][&since={seq}[&epoch={epoch}]][&with={client_id}]
/// (the token may come as the subprotocol `roomcast.token.{token}` instead;
/// `with`: the other participant of a direct message group), and the
/// identity's rooms stream, GET /ws/_me/{client_id}
fn websocket(gate: Gate) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ws" / String / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<Remote>())
        .and(with(gate))
        .and_then(
            |group: String,
             client: String,
             query: HashMap<String, String>,
             headers: http::HeaderMap,
             on_upgrade,
             remote: Option<Remote>,
             gate: Gate| async move {
                let token = upgrade::offered_token(&headers).or(query.get("token").map(String::as_str));
                let with = query.get("with").map(String::as_str);
                let knock =
                    Knock { group: &group, client: &client, token, ticket: None, with, headers: &headers, remote };
                let Passed { admitted, ip, place } = gate.pass(knock).await?;
                let request = upgrade::Request {
                    group: &group,
                    client_id: &client,
                    query: &query,
                    headers: &headers,
                    on_upgrade,
                    ip,
                    place,
                };
                let verified = admitted.claims.as_ref().map(|claims| claims.sub);
                upgrade::accept(request, admitted, &gate.upgrades).map_err(|err| {
                    // A proxy on the way stripped `Upgrade`: the app asks.
                    if let (UpgradeError::NotWebSocket, Some(sub)) = (&err, verified) {
                        gate.stripped.note(sub, Instant::now());
                    }
                    warp::reject::custom(err)
                })
            },
        )
}

/// GET /api/groups/{group}/messages[?before={seq}|?after={seq}][&limit={n}][&with={client_id}]
/// with `Authorization: Bearer {token or API key}`
fn messages(
    auth: Arc<Auth>,
    history: History,
    api_key: Option<Arc<str>>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "groups" / String / "messages")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(warp::query::<HashMap<String, String>>())
        .and(with((auth, history, api_key)))
        .and_then(
            |group: String,
             headers,
             query: HashMap<String, String>,
             (auth, history, api_key): (Arc<Auth>, History, Option<Arc<str>>)| async move {
                let bearer = auth::bearer(&headers);
                // The API key reads every group's history, direct messages
                // included (an operator's export or moderation); anyone else
                // is admitted as a reader.
                if publish_api::check_key(api_key.as_deref(), bearer).is_err() {
                    let with = query.get("with").map(String::as_str);
                    auth.admit_reader(bearer, &group, with).map_err(warp::reject::custom)?;
                }
                api::messages(&group, &query, &history)
                    .await
                    .map(|page| warp::reply::json(&page).into_response())
                    .map_err(warp::reject::custom)
            },
        )
}

/// POST /api/identities with `{"name": "…"}` (name optional)
fn create_identity(
    issuer: Arc<Issuer>,
    auth: Arc<Auth>,
    proxies: Arc<TrustedProxies>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "identities")
        .and(warp::post())
        .and(warp::body::content_length_limit(identities::MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .and(client_ip(proxies))
        .and_then(move |body: bytes::Bytes, ip: IpAddr| {
            let issued = auth
                .check_address(ip)
                .map_err(IdentityError::Auth)
                .and_then(|()| issuer.create(&body, Some(ip), auth.tokens()));
            async move {
                let issued = issued.map_err(warp::reject::custom)?;
                Ok::<_, Rejection>(
                    warp::reply::with_status(warp::reply::json(&issued), StatusCode::CREATED).into_response(),
                )
            }
        })
}

/// POST /api/identities/renew with `Authorization: Bearer {current token}`
fn renew_identity(
    issuer: Arc<Issuer>,
    auth: Arc<Auth>,
    proxies: Arc<TrustedProxies>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "identities" / "renew")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(client_ip(proxies))
        .and_then(move |headers: http::HeaderMap, ip: IpAddr| {
            let renewed = auth
                .check_address(ip)
                .and_then(|()| auth.identify(auth::bearer(&headers)))
                .map_err(IdentityError::Auth)
                .and_then(|current| issuer.renew(current, Some(ip), auth.tokens()));
            async move {
                let renewed = renewed.map_err(warp::reject::custom)?;
                Ok::<_, Rejection>(warp::reply::json(&renewed).into_response())
            }
        })
}

/// POST /api/identities/{sub}/revoke with `Authorization: Bearer {api key}`
fn revoke_identity(
    api_key: Option<Arc<str>>,
    identities: IdentityControl,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "identities" / String / "revoke")
        .and(warp::post())
        .and(api_key_checked(api_key))
        .and(with(identities))
        .and_then(|sub: String, _key: Arc<str>, identities: IdentityControl| async move {
            let revoked = identities.revoke(&sub).await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(warp::reply::json(&revoked).into_response())
        })
}

/// GET /api/groups/{group}/presence[?limit=N] with `Authorization: Bearer {api key}`
fn group_presence(
    api_key: Option<Arc<str>>,
    presence: Arc<Presence>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "groups" / String / "presence")
        .and(warp::get())
        .and(api_key_checked(api_key))
        .and(warp::query::<HashMap<String, String>>())
        .and(with(presence))
        .and_then(|group: String, _key: Arc<str>, query: HashMap<String, String>, presence: Arc<Presence>| async move {
            let found = presence_api::lookup(presence, &group, &query).await.map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(warp::reply::json(&found).into_response())
        })
}

/// The API key of the server-side APIs, checked before anything else
/// (the body included); extracts the configured key.
fn api_key_checked(api_key: Option<Arc<str>>) -> impl Filter<Extract = (Arc<str>,), Error = Rejection> + Clone {
    with(api_key).and(warp::header::optional::<String>("authorization")).and_then(
        |api_key: Option<Arc<str>>, authorization: Option<String>| async move {
            let presented = authorization.as_deref().and_then(|value| value.strip_prefix("Bearer "));
            publish_api::check_key(api_key.as_deref(), presented).map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(api_key.unwrap_or_else(|| Arc::from("")))
        },
    )
}

/// GET /api/identities/me with `Authorization: Bearer …`
fn my_identity(
    auth: Arc<Auth>,
    proxies: Arc<TrustedProxies>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "identities" / "me")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(client_ip(proxies))
        .and_then(move |headers: http::HeaderMap, ip: IpAddr| {
            let me =
                auth.check_address(ip).and_then(|()| auth.identify(auth::bearer(&headers))).map(identities::Me::from);
            async move {
                let me = me.map_err(|err| warp::reject::custom(IdentityError::Auth(err)))?;
                Ok::<_, Rejection>(warp::reply::json(&me).into_response())
            }
        })
}

/// GET /api/identities/me/transport with `Authorization: Bearer …`:
/// `{"upgrade_stripped": true}` when a WebSocket handshake of this identity
/// reached this node without `Upgrade` in the last minute (a proxy strips
/// it: the app moves to the HTTP fallback at once).
fn my_transport(
    auth: Arc<Auth>,
    proxies: Arc<TrustedProxies>,
    stripped: Arc<StrippedUpgrades>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "identities" / "me" / "transport")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(client_ip(proxies))
        .and_then(move |headers: http::HeaderMap, ip: IpAddr| {
            let me = auth.check_address(ip).and_then(|()| auth.identify(auth::bearer(&headers)));
            let answer = me.map(|claims| stripped.seen(claims.sub, Instant::now()));
            async move {
                let stripped = answer.map_err(|err| warp::reject::custom(IdentityError::Auth(err)))?;
                let body = serde_json::json!({ "upgrade_stripped": stripped });
                Ok::<_, Rejection>(warp::reply::json(&body).into_response())
            }
        })
}

/// POST /api/groups/{group}/messages with `Authorization: Bearer {api key}`,
/// `{"text": "…", "name": "…"}` and optionally `Idempotency-Key: …`
fn publish(
    api_key: Option<Arc<str>>,
    sequencer: Sequencer,
    max_message_bytes: usize,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "groups" / String / "messages")
        .and(warp::post())
        // The key before anything else, the body included.
        .and(api_key_checked(api_key))
        .and(warp::header::optional::<String>("idempotency-key"))
        .and(warp::body::content_length_limit(publish_api::MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .and(with(sequencer))
        .and_then(
            move |group: String, api_key: Arc<str>, key: Option<String>, body: bytes::Bytes, sequencer: Sequencer| async move {
                let published =
                    publish_api::publish(&api_key, &group, &body, key.as_deref(), &sequencer, max_message_bytes)
                        .await
                    .map_err(warp::reject::custom)?;
                let status = if published.duplicate { StatusCode::OK } else { StatusCode::CREATED };
                Ok::<_, Rejection>(warp::reply::with_status(warp::reply::json(&published), status).into_response())
            },
        )
}

/// GET /readyz: 200 while this node can write to its store, else 503 (a
/// load balancer then sends it no new sockets). `x_forwarded_for_missing`:
/// a trusted proxy sent a request without `X-Forwarded-For` (a warning for
/// the operator, not a reason to take no sockets).
fn readyz(
    history: History,
    proxies: Arc<TrustedProxies>,
    drain: Drain,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("readyz").and(warp::get()).and(with((history, proxies, drain))).map(
        |(history, proxies, drain): (History, Arc<TrustedProxies>, Drain)| {
            let (status, text) = if drain.is_draining() {
                (StatusCode::SERVICE_UNAVAILABLE, "draining")
            } else if history.ready() {
                (StatusCode::OK, "ready")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            };
            let body = serde_json::json!({ "status": text, "x_forwarded_for_missing": proxies.unforwarded_seen() });
            warp::reply::with_status(warp::reply::json(&body), status).into_response()
        },
    )
}

/// GET /healthz
fn healthz(registry: Arc<Registry>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz").and(warp::get()).and(with(registry)).map(|registry: Arc<Registry>| {
        let stats = registry.stats();
        warp::reply::json(&serde_json::json!({
            "status": "ok",
            "connections": stats.connections,
            "groups": stats.groups,
        }))
        .into_response()
    })
}
