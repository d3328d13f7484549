//! `roomcast --check-config`: what the server would run with, checked and
//! printed with its secrets masked, without starting or creating anything
//! (no data directory, no secret file: it says what it would create).

use std::fmt::Write as _;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};

use crate::auth::secret::FILE_NAME;
use crate::config::{Config, HistoryKind};
use crate::redis_commands;

/// What the check found.
#[derive(Debug)]
pub struct Report {
    /// One line per flag (value and where it came from), then the findings.
    pub text: String,
    /// Whether the server would start with it.
    pub ok: bool,
}

/// Checks `config`, whose values came as `matches` says.
pub fn check(config: &Config, matches: &ArgMatches) -> Report {
    let mut text = String::new();
    for arg in Config::command().get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long().filter(|_| !matches!(id, "help" | "version" | "check_config")) else {
            continue;
        };
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "command line",
            Some(ValueSource::EnvVariable) => "environment",
            Some(ValueSource::DefaultValue) => "default",
            _ => "not set",
        };
        let _ = writeln!(text, "--{long} = {}   ({source})", shown(id, matches));
    }
    text.push('\n');
    let mut ok = true;
    if let Err(err) = config.validate() {
        ok = false;
        let _ = writeln!(text, "error: {err}");
    }
    for warning in config.warnings() {
        let _ = writeln!(text, "warning: {warning}");
    }
    let _ = writeln!(text, "{}", storage(config));
    if let Some(url) = &config.redis {
        match ping(url) {
            Ok(()) => {
                let _ = writeln!(text, "Redis at {} answers", masked_url(url));
            }
            Err(err) => {
                ok = false;
                let _ = writeln!(text, "error: Redis at {} does not answer: {err}", masked_url(url));
            }
        }
    }
    text.push_str(if ok { "the server would start with this configuration\n" } else { "the server would not start\n" });
    Report { text, ok }
}

/// A flag's value as given, secrets masked.
fn shown(id: &str, matches: &ArgMatches) -> String {
    let Some(values) = matches.get_raw(id) else { return "-".to_owned() };
    let joined: Vec<String> = values.map(|value| value.to_string_lossy().into_owned()).collect();
    let joined = joined.join(",");
    match id {
        "secret" | "api_key" | "admin_key" => "(given, hidden)".to_owned(),
        "redis" => masked_url(&joined),
        _ => joined,
    }
}

/// `url` without the credentials it may hold (`redis://user:pass@host`).
pub fn masked_url(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.rsplit_once('@').map(|(_, host)| (scheme, host))) {
        Some((scheme, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

/// Where history and the secret would be, and what would be created.
fn storage(config: &Config) -> String {
    if config.redis.is_some() {
        return secret_line(config, None);
    }
    match config.history {
        HistoryKind::Memory => format!("history in memory (lost at exit); {}", secret_line(config, None)),
        HistoryKind::Sqlite => {
            let dir = config.database.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let database = if dir.is_dir() {
                format!("history in {}", config.database.display())
            } else {
                format!("history in {} (would create the directory {})", config.database.display(), dir.display())
            };
            format!("{database}; {}", secret_line(config, Some(dir)))
        }
    }
}

fn secret_line(config: &Config, dir: Option<&Path>) -> String {
    match (&config.secret, dir) {
        (Some(_), _) => "the secret is given".to_owned(),
        (None, None) => "no secret given: a new one for this run (tokens do not survive a restart)".to_owned(),
        (None, Some(dir)) => {
            let path = dir.join(FILE_NAME);
            if path.is_file() {
                format!("the secret is read from {}", path.display())
            } else {
                format!("would generate the secret in {}", path.display())
            }
        }
    }
}

/// Whether Redis at `url` answers a `PING`.
fn ping(url: &str) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut connection = redis_commands::connect(&client)?;
    redis::cmd("PING").query::<String>(&mut connection).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_masked() {
        assert_eq!(masked_url("redis://user:pa55@10.0.0.5:6379/0"), "redis://***@10.0.0.5:6379/0");
        assert_eq!(masked_url("rediss://:pa55@host/"), "rediss://***@host/");
        assert_eq!(masked_url("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
    }
}
