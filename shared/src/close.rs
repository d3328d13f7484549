//! WebSocket close codes Roomcast's server sends and the advice attached to
//! each. A client decides whether to reconnect with [`should_reconnect`].

/// The client closed on purpose (or the server confirms such a close).
pub const NORMAL: u16 = 1000;
/// The server is going away without a planned restart; reconnect with backoff.
pub const GOING_AWAY: u16 = 1001;
/// The peer broke the WebSocket framing rules.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A text message was not valid UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// The client is not allowed to do what it did; reconnecting will not help.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message exceeded the server's size limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server hit an unexpected error.
pub const INTERNAL_ERROR: u16 = 1011;
/// The server is restarting; reconnect with backoff (jittered, so that all
/// clients of a restarting node do not come back at the same instant).
pub const SERVICE_RESTART: u16 = 1012;
/// The connection could not keep up with its group (its outbound queue was
/// full); reconnect with backoff.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// The server heard nothing from the client within the idle timeout.
pub const HEARTBEAT_TIMEOUT: u16 = 4000;
/// The connection's token expired (and no `refresh` brought a newer one):
/// get a new token and reconnect.
pub const TOKEN_EXPIRED: u16 = 4001;
/// An operator disconnected this identity (the admin API): reconnect with
/// backoff. JSON members get a `removed` event with the reason first.
pub const DISCONNECTED: u16 = 4010;
/// The identity was revoked, or banned until a time (a `removed` event with
/// `until_ms` comes first): its tokens are refused, so reconnecting will
/// not help (within 4400–4499: terminal).
pub const IDENTITY_REVOKED: u16 = 4403;

/// Whether a client should reconnect after the connection closed with `code`.
///
/// Codes that report the client's own deliberate close or a decision that a
/// new connection would meet again are terminal; everything else, including
/// abnormal closures (1006) and unknown codes, is worth another attempt.
pub fn should_reconnect(code: u16) -> bool {
    !matches!(code, NORMAL | POLICY_VIOLATION | 4400..=4499)
}

/// A short human description of a close code, for status lines.
pub fn describe(code: u16) -> &'static str {
    match code {
        NORMAL => "closed normally",
        GOING_AWAY => "server going away",
        PROTOCOL_ERROR => "protocol error",
        INVALID_PAYLOAD => "invalid UTF-8",
        POLICY_VIOLATION => "policy violation",
        MESSAGE_TOO_BIG => "message too big",
        INTERNAL_ERROR => "server error",
        SERVICE_RESTART => "server restarting",
        TRY_AGAIN_LATER => "too slow to keep up",
        HEARTBEAT_TIMEOUT => "heartbeat timeout",
        TOKEN_EXPIRED => "token expired",
        DISCONNECTED => "disconnected by an operator",
        IDENTITY_REVOKED => "removed from this server",
        1005 => "no status",
        1006 => "connection lost",
        _ => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_codes_stop_reconnecting() {
        assert!(!should_reconnect(NORMAL));
        assert!(!should_reconnect(POLICY_VIOLATION));
        assert!(!should_reconnect(4403));
        assert!(!should_reconnect(IDENTITY_REVOKED));
    }

    #[test]
    fn server_side_trouble_reconnects() {
        for code in [
            GOING_AWAY,
            MESSAGE_TOO_BIG,
            INVALID_PAYLOAD,
            SERVICE_RESTART,
            TRY_AGAIN_LATER,
            HEARTBEAT_TIMEOUT,
            TOKEN_EXPIRED,
            DISCONNECTED,
            1006,
            4999,
        ] {
            assert!(should_reconnect(code), "{code} should reconnect");
        }
    }
}
