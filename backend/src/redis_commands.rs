//! A connection to Redis for commands, made again after a failure: the
//! signal half and the presence store each keep one (the history store
//! has its own writer and readers).

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, RedisError, RedisResult};

use crate::locks::lock;

/// How long a connection attempt, and a command, may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// One connection for commands, made when first needed and again after a
/// command fails on it.
pub struct Commands {
    client: Client,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Commands")
    }
}

impl Commands {
    pub fn new(client: Client) -> Self {
        Self { client, connection: Mutex::new(None) }
    }

    /// Runs `command`; once more on a new connection if it fails (a
    /// connection Redis dropped is only noticed in use).
    pub fn run<T>(&self, command: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T, RedisError> {
        // A failed command leaves no connection rather than half of one.
        let mut held = lock(&self.connection);
        let mut last = None;
        for _ in 0..2 {
            let connection = match held.as_mut() {
                Some(connection) => connection,
                None => held.insert(connect(&self.client)?),
            };
            match command(connection) {
                Ok(answer) => return Ok(answer),
                Err(err) => {
                    *held = None;
                    last = Some(err);
                }
            }
        }
        Err(last.expect("set by a failed attempt"))
    }
}

/// A connection to `client` whose commands time out.
pub fn connect(client: &Client) -> RedisResult<Connection> {
    let connection = client.get_connection_with_timeout(TIMEOUT)?;
    connection.set_read_timeout(Some(TIMEOUT))?;
    connection.set_write_timeout(Some(TIMEOUT))?;
    Ok(connection)
}
