//! Roomcast's test kit: dev-only, never part of the server.
//!
//! - [`LocalRedis`]: a private `redis-server` on a free loopback port (never
//!   the system's), plain or TLS with a password, killed and restarted on
//!   the same files. The backend's Redis tests use it as a library;
//!   `scripts/cluster.sh` and the browser tests (`e2e/`) start one through
//!   the `roomcast-testkit redis` binary.

mod local_redis;

pub use local_redis::{LocalRedis, LocalRedisError};
