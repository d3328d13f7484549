//! What routes take from a request or hand each other: a value shared by
//! clone, and the client's address.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use warp::Filter;

use crate::net::client_ip::TrustedProxies;
use crate::net::Remote;

/// `value`, cloned into each request's filter chain.
pub fn with<T: Clone + Send>(value: T) -> impl Filter<Extract = (T,), Error = Infallible> + Clone {
    warp::any().map(move || value.clone())
}

/// The client's address: the socket's, or the one a trusted proxy forwards.
pub fn client_ip(proxies: Arc<TrustedProxies>) -> impl Filter<Extract = (IpAddr,), Error = Infallible> + Clone {
    warp::ext::optional::<Remote>().and(warp::header::headers_cloned()).map(
        move |remote: Option<Remote>, headers: http::HeaderMap| client_address(&proxies, remote.as_ref(), &headers),
    )
}

pub fn client_address(proxies: &TrustedProxies, remote: Option<&Remote>, headers: &http::HeaderMap) -> IpAddr {
    let socket = remote.map_or(IpAddr::from([127, 0, 0, 1]), |remote| remote.addr.ip());
    proxies.client_ip(socket, headers)
}
