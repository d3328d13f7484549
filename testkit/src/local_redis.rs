//! A private `redis-server` on a free loopback port, for the tests, the
//! local cluster and the browser tests: never the system's. AOF is on
//! (`appendfsync everysec`), RDB snapshots off, eviction off, its files in a
//! directory of its own.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; stopped (and its directory removed) on drop.
#[derive(Debug)]
pub struct LocalRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// TLS with a self-signed certificate, and a password.
    secured: Option<String>,
}

/// Why a local Redis could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalRedisError {
    #[error("cannot start redis-server (is it installed? the test script installs Debian's): {0}")]
    Spawn(std::io::Error),
    #[error("redis-server did not answer within 10 s on port {0}")]
    NoAnswer(u16),
    #[error("redis-server exited at start ({0})")]
    Exited(std::process::ExitStatus),
    #[error("cannot make a certificate with openssl: {0}")]
    Certificate(std::io::Error),
}

impl LocalRedis {
    /// Starts one on a free port.
    pub fn start() -> Result<Self, LocalRedisError> {
        Self::start_with(None)
    }

    /// Starts one that speaks only TLS (a self-signed certificate, made
    /// with the `openssl` command) and asks for `password`.
    pub fn start_secured(password: &str) -> Result<Self, LocalRedisError> {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(secured: Option<String>) -> Result<Self, LocalRedisError> {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(LocalRedisError::Spawn)?.port();
        let dir = std::env::temp_dir().join(format!("roomcast-redis-{port}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(LocalRedisError::Spawn)?;
        if secured.is_some() {
            let made = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
                .arg("-keyout")
                .arg(dir.join("tls.key"))
                .arg("-out")
                .arg(dir.join("tls.crt"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(LocalRedisError::Certificate)?;
            if !made.success() {
                return Err(LocalRedisError::Certificate(std::io::Error::other("openssl failed")));
            }
        }
        let mut redis = Self { child: None, port, dir, secured };
        redis.spawn()?;
        Ok(redis)
    }

    fn spawn(&mut self) -> Result<(), LocalRedisError> {
        let mut command = Command::new("redis-server");
        match &self.secured {
            None => command.args(["--port", &self.port.to_string()]),
            Some(password) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(self.dir.join("tls.crt"))
                .arg("--tls-key-file")
                .arg(self.dir.join("tls.key"))
                .args(["--requirepass", password]),
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "everysec", "--maxmemory-policy", "noeviction", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(LocalRedisError::Spawn)?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // One that exited (a port taken meanwhile, a bad flag) never answers.
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(LocalRedisError::Exited(status));
            }
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(LocalRedisError::NoAnswer(self.port))
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
            .is_ok()
    }

    /// Its URL; a secured one's is `rediss://` with the password, and
    /// `#insecure` (its certificate is self-signed).
    pub fn url(&self) -> String {
        match &self.secured {
            None => format!("redis://127.0.0.1:{}/", self.port),
            Some(password) => format!("rediss://:{password}@127.0.0.1:{}/#insecure", self.port),
        }
    }

    /// A connection, for tests that act on Redis directly.
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        client.get_connection_with_timeout(Duration::from_secs(2)).expect("the local Redis answers")
    }

    /// Stops it at once (SIGKILL): what the AOF holds survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts it again on the same port and files.
    pub fn restart(&mut self) -> Result<(), LocalRedisError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
