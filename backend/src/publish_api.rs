//! `POST /api/groups/{group}/messages`: the server-side publish (what the
//! seeds' "the server pushes" means). An application holding the API key
//! posts a message as the server's own identity; an `Idempotency-Key` makes
//! a retried post exactly-once.

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use roomcast_shared::protocol::{check_text, fits_the_limit};
use roomcast_shared::{ChatMessage, ClientId, DisplayName, GroupName, MessageId, NameError, Sender, SERVER_NAME};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::direct::{self, DirectError};
use crate::history::sequencer::{Answer, Sequencer};
use crate::http_error::{headers_for, HttpError};

/// The identity messages posted through the API are sent as (verified).
pub const SERVER_CLIENT_ID: ClientId = ClientId(Uuid::from_u128(0x726f_6f6d_6361_7374_2d73_6572_7665_7221));
/// Largest request body.
pub const MAX_BODY_BYTES: u64 = 256 * 1024;
/// Longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// Ids made from idempotency keys live in their own UUID namespace.
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x0d5c_8a35_3b4e_4f0e_9d7a_52c1_e0b6_44a1);

/// The message id for `key` in `group`: a name-based UUID of the API key,
/// the group and the key. Clients see message ids but not the API key, so
/// none can make (and so take or block) the id of a key the server will
/// use.
fn id_for_key(api_key: &str, group: &GroupName, key: &str) -> MessageId {
    let mut name = Vec::with_capacity(api_key.len() + group.as_str().len() + key.len() + 2);
    for part in [api_key.as_bytes(), group.as_str().as_bytes(), key.as_bytes()] {
        name.extend_from_slice(part);
        name.push(0);
    }
    MessageId(Uuid::new_v5(&KEY_NAMESPACE, &name))
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("a valid API key is required (Authorization: Bearer …)")]
    NoKey,
    #[error("the publish API is off: start the server with --api-key")]
    Off,
    #[error(transparent)]
    BadGroup(#[from] NameError),
    #[error(transparent)]
    Direct(#[from] DirectError),
    #[error("body: {0}")]
    BadBody(String),
    #[error("text: longer than this server's limit of {0} bytes (counted JSON-escaped)")]
    TooLong(usize),
    #[error("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes")]
    BadKey,
    #[error("this Idempotency-Key was used for another message")]
    KeyReused,
    #[error("the message could not be stored now; send it again with the same Idempotency-Key")]
    Unavailable,
    #[error("this server holds as many rooms as it may; the message cannot create another")]
    OverQuota,
}

impl warp::reject::Reject for PublishError {}

impl HttpError for PublishError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoKey => StatusCode::UNAUTHORIZED,
            Self::Off => StatusCode::NOT_FOUND,
            Self::BadGroup(_) | Self::BadBody(_) | Self::BadKey => StatusCode::BAD_REQUEST,
            Self::KeyReused => StatusCode::CONFLICT,
            Self::TooLong(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::OverQuota => StatusCode::INSUFFICIENT_STORAGE,
            Self::Direct(err) => err.status(),
        }
    }

    /// The store is out of reach for a moment: try again in a second.
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            Self::Unavailable => vec![(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            _ => headers_for(self.status()),
        }
    }
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: String,
    #[serde(default)]
    name: Option<String>,
}

/// The answer: where the message is (201, or 200 for a repeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub seq: u64,
    pub epoch: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// Checks the API key: before anything else about the request.
pub fn check_key(configured: Option<&str>, presented: Option<&str>) -> Result<(), PublishError> {
    let Some(configured) = configured else { return Err(PublishError::Off) };
    match presented {
        Some(presented) if constant_time_eq(configured.as_bytes(), presented.as_bytes()) => Ok(()),
        _ => Err(PublishError::NoKey),
    }
}

/// Whether `presented` is `configured`, compared in constant time.
pub fn keys_match(presented: &str, configured: &str) -> bool {
    constant_time_eq(presented.as_bytes(), configured.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Publishes `body` to `group`, as the server.
pub async fn publish(
    api_key: &str,
    group: &str,
    body: &[u8],
    idempotency_key: Option<&str>,
    sequencer: &Sequencer,
    max_message_bytes: usize,
) -> Result<Published, PublishError> {
    let group: GroupName = group.parse()?;
    direct::server_may_publish(&group)?;
    let body: Body = serde_json::from_slice(body).map_err(|err| PublishError::BadBody(err.to_string()))?;
    let name = match body.name {
        None => DisplayName::try_from(SERVER_NAME.to_owned()),
        // Chosen as a client's name is, except that the server's own name,
        // which no client may choose, is the API's to give.
        Some(name) => match name.parse() {
            Err(NameError::ReservedDisplayName) => DisplayName::try_from(name),
            parsed => parsed,
        },
    };
    let name = name.map_err(|err| PublishError::BadBody(format!("name: {err}")))?;
    let id = match idempotency_key {
        Some(key) if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES => return Err(PublishError::BadKey),
        Some(key) => id_for_key(api_key, &group, key),
        // Time-ordered, as a raw publish's (see connection/commands.rs).
        None => MessageId(Uuid::now_v7()),
    };
    // The same rules as a client's `send`.
    check_text(&body.text).map_err(|reason| PublishError::BadBody(reason.to_owned()))?;
    if !fits_the_limit(&body.text, max_message_bytes) {
        return Err(PublishError::TooLong(max_message_bytes));
    }
    let message = ChatMessage {
        group,
        seq: 0,
        id,
        from: Sender { client_id: SERVER_CLIENT_ID, name: Some(name), verified: true },
        text: body.text,
        ts: 0,
    };
    match sequencer.publish_and_wait(message).await.map_err(|_| PublishError::Unavailable)? {
        Answer::Stored { seq, epoch, duplicate } => Ok(Published { seq, epoch, duplicate }),
        // The same key for another text is a mistake worth telling.
        Answer::Conflict { .. } => Err(PublishError::KeyReused),
        Answer::Unavailable => Err(PublishError::Unavailable),
        Answer::OverQuota => Err(PublishError::OverQuota),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client sees message ids but not the API key: it cannot make the
    /// id a key will get, to take or block it.
    #[test]
    fn the_id_of_a_key_depends_on_the_api_key_and_the_group() {
        let (group, other): (GroupName, GroupName) = ("ops".parse().unwrap(), "dev".parse().unwrap());
        let id = id_for_key("api-key-one", &group, "deploy-78");
        assert_eq!(id, id_for_key("api-key-one", &group, "deploy-78"), "the same key, the same id");
        assert_ne!(id, id_for_key("api-key-two", &group, "deploy-78"));
        assert_ne!(id, id_for_key("api-key-one", &other, "deploy-78"));
        assert_ne!(id, MessageId(Uuid::new_v5(&KEY_NAMESPACE, b"deploy-78")));
    }
}
