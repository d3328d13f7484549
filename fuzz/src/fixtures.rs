//! What the server-side targets share: the secret and key they sign with,
//! a tokio runtime per thread, and the server's own state, in memory.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use roomcast_backend::assembly::{self, assemble, Assembly};
use roomcast_backend::auth::{AuthMode, Secret, Tokens};
use roomcast_backend::backend::Backend;
use roomcast_backend::config::{Config, HistoryKind};
use roomcast_backend::history::memory::MemoryStore;
use roomcast_backend::history::sequencer::Sequencer;
use roomcast_backend::identities::IdentitiesMode;
use roomcast_backend::metrics::Metrics;
use roomcast_backend::state::AppState;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// The secret the targets' tokens are signed with (never a real one).
pub const TEST_SECRET: &str = "roomcast-fuzz-test-secret-never-a-real-one-0123";

/// The publish API's key in the targets.
pub const API_KEY: &str = "roomcast-fuzz-api-key-never-a-real-one-0123";

/// The address the server under test listens on, as its `Host` names it.
pub const LISTEN: &str = "127.0.0.1:8000";

/// Most groups the in-memory store holds: with fuzzed group names, the
/// quota is reached, and tested.
pub const MAX_GROUPS: u64 = 64;

pub fn secret() -> Secret {
    Secret::from_text(TEST_SECRET).expect("the test secret is long enough")
}

/// Tokens signed with [`TEST_SECRET`], to issue and verify with.
pub static TOKENS: LazyLock<Tokens> = LazyLock::new(|| Tokens::new(&secret()));

thread_local! {
    /// One runtime per thread: the harness calls a target once per input,
    /// and a runtime is far too costly to build each time.
    static RUNTIME: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
}

/// Runs `future` to completion on this thread's runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A server's state over an in-memory store: what `Server::start` builds
/// ([`assemble`]), without a socket.
pub struct UnderTest {
    pub state: AppState,
    /// A handle to the writer thread, which stops once every handle is
    /// gone (with the backend).
    pub sequencer: Sequencer,
}

impl UnderTest {
    /// `--auth required` with [`TEST_SECRET`], the publish API on with
    /// [`API_KEY`], self-service identities on, `127.0.0.0/8` a trusted
    /// proxy (so that `X-Forwarded-For` is read), on [`LISTEN`].
    pub fn new() -> Self {
        let config = config();
        let registry = assembly::registry(&config).expect("the fan-out's threads");
        let store = Arc::new(MemoryStore::with_max_groups(Some(MAX_GROUPS)));
        let backend = Backend::local(store, registry.clone());
        let listen = LISTEN.parse().expect("a socket address");
        let Assembly { state, .. } =
            assemble(&config, listen, &backend, registry, Metrics::new(), &CancellationToken::new())
                .expect("the fuzz configuration");
        let sequencer = state.upgrades.context.sequencer.clone();
        Self { state, sequencer }
    }
}

/// The configuration of the server under test (see [`UnderTest::new`]).
fn config() -> Config {
    let mut config = Config::defaults();
    config.secret = Some(TEST_SECRET.to_owned());
    config.api_key = Some(API_KEY.to_owned());
    config.auth = AuthMode::Required;
    config.identities = IdentitiesMode::On;
    config.identities_per_minute = 10;
    config.identity_lifetime = Duration::from_secs(86_400);
    config.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a network")];
    config.max_connections = Some(1000);
    config.max_connections_per_ip = 100;
    config.history = HistoryKind::Memory;
    config.max_groups = MAX_GROUPS;
    (config.outbound_queue, config.outbound_queue_bytes) = (1024, 1 << 20);
    (config.publish_queue, config.publish_queue_bytes) = (1024, 1 << 20);
    config.publish_rate = 0;
    config.close_grace = Duration::from_millis(100);
    // Unlimited: the handshake target predicts every status from the
    // request alone.
    (config.new_groups_per_hour, config.new_groups_per_hour_per_ip) = (0, 0);
    config
}

impl Default for UnderTest {
    fn default() -> Self {
        Self::new()
    }
}

/// A value rebuilt after `every` uses, so that what a target stores (the
/// in-memory history, rate-limit buckets) stays bounded in long runs.
pub struct Renewed<T> {
    value: Option<T>,
    uses: u32,
    every: u32,
}

impl<T> Renewed<T> {
    pub const fn new(every: u32) -> Self {
        Self { value: None, uses: 0, every }
    }

    /// The value, made anew by `make` when it is missing or worn out.
    pub fn get(&mut self, make: impl FnOnce() -> T) -> &mut T {
        if self.uses >= self.every {
            self.value = None;
            self.uses = 0;
        }
        self.uses += 1;
        self.value.get_or_insert_with(make)
    }
}

/// A thread's [`Renewed`] value, in a `thread_local!`.
pub type PerThread<T> = RefCell<Renewed<T>>;
