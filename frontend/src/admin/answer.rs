//! What an admin API answer means for the page: its JSON, a refused key
//! (401: the key is forgotten and asked for again), or an error to show,
//! the server's own words (its errors are plain text).

use std::fmt::Display;

use serde::de::DeserializeOwned;

/// Why an admin request did not do what it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The server refuses the admin key (401).
    WrongKey,
    /// Any other failure, in words for the operator.
    Failed(String),
}

impl Problem {
    /// The request got no answer (`err`: the browser's reason).
    pub fn unreachable(err: impl Display) -> Self {
        Self::Failed(format!("could not reach the server ({err})"))
    }
}

/// The JSON of a successful answer with `status` and `body`.
pub fn read<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, Problem> {
    refusal(status, body).map_or(Ok(()), Err)?;
    serde_json::from_str(body).map_err(|err| Problem::Failed(format!("the server's answer could not be read ({err})")))
}

/// A successful answer without a body worth reading (`204`).
pub fn read_empty(status: u16, body: &str) -> Result<(), Problem> {
    refusal(status, body).map_or(Ok(()), Err)
}

/// What a status other than 2xx means; `None` for success.
fn refusal(status: u16, body: &str) -> Option<Problem> {
    match status {
        200..=299 => None,
        401 => Some(Problem::WrongKey),
        _ => {
            let body = body.trim();
            Some(Problem::Failed(if body.is_empty() { format!("the server answered {status}") } else { body.into() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_is_read_as_json() {
        assert_eq!(read::<Vec<u32>>(200, "[1,2]"), Ok(vec![1, 2]));
        assert_eq!(read::<Vec<u32>>(201, "[]"), Ok(vec![]));
        assert_eq!(read_empty(204, ""), Ok(()));
    }

    #[test]
    fn a_refused_key_is_its_own_problem() {
        assert_eq!(read::<Vec<u32>>(401, "the admin key is required"), Err(Problem::WrongKey));
        assert_eq!(read_empty(401, ""), Err(Problem::WrongKey));
    }

    #[test]
    fn other_errors_show_the_servers_words() {
        let failed = read::<Vec<u32>>(400, "not a network: 300.1.1.1\n");
        assert_eq!(failed, Err(Problem::Failed("not a network: 300.1.1.1".into())));
        assert_eq!(read_empty(404, ""), Err(Problem::Failed("the server answered 404".into())));
        assert_eq!(read_empty(503, "  "), Err(Problem::Failed("the server answered 503".into())));
    }

    #[test]
    fn an_unreadable_success_is_a_problem_too() {
        let Err(Problem::Failed(text)) = read::<Vec<u32>>(200, "<html>") else { panic!("must fail") };
        assert!(text.starts_with("the server's answer could not be read"), "{text}");
    }
}
