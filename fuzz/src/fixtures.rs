//! What the server-side targets share: the secret and key they sign with,
//! a tokio runtime per thread, and the server's own state, in memory.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use roomcast_backend::access::Access;
use roomcast_backend::auth::{Auth, AuthMode, Revocations, Secret, Tokens};
use roomcast_backend::connection::{Context, Settings};
use roomcast_backend::history::memory::MemoryStore;
use roomcast_backend::history::sequencer::{Delivering, Depth, Sequencer};
use roomcast_backend::history::History;
use roomcast_backend::identities::{IdentitiesMode, Issuer, Policy};
use roomcast_backend::net::admission::{Admission, Caps};
use roomcast_backend::net::client_ip::TrustedProxies;
use roomcast_backend::new_groups::NewGroupLimits;
use roomcast_backend::queue::Capacity;
use roomcast_backend::rate::PublishLimits;
use roomcast_backend::registry::Registry;
use roomcast_backend::revoke::{self, Revoker};
use roomcast_backend::signals::memory::MemoryHub;
use roomcast_backend::signals::Signals;
use roomcast_backend::state::AppState;
use roomcast_backend::upgrade::Upgrades;
use roomcast_shared::limits;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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

/// A server's state over an in-memory store: what `Server::start` builds,
/// without a socket.
pub struct Backend {
    pub state: AppState,
    /// A handle to the writer thread, which stops once every handle is
    /// gone (with the backend).
    pub sequencer: Sequencer,
}

impl Backend {
    /// `--auth required` with [`TEST_SECRET`], the publish API on with
    /// [`API_KEY`], self-service identities on, `127.0.0.0/8` a trusted
    /// proxy (so that `X-Forwarded-For` is read), on [`LISTEN`].
    pub fn new() -> Self {
        let store = Arc::new(MemoryStore::with_max_groups(Some(MAX_GROUPS)));
        let registry = Registry::new(Capacity { messages: 1024, bytes: 1 << 20 });
        let depth = Depth { messages: 1024, bytes: 1 << 20 };
        let (sequencer, _writer) =
            Sequencer::start(store.clone(), Delivering::Itself(registry.clone()), depth).expect("a writer thread");
        let history = History::new(store.clone());
        let revocations = Arc::new(Revocations::default());
        let auth = Arc::new(Auth::new(AuthMode::Required, Tokens::new(&secret()), revocations.clone()));
        let context = Context {
            auth: auth.clone(),
            history: history.clone(),
            sequencer: sequencer.clone(),
            limits: PublishLimits::unlimited(),
            settings: Settings {
                ping_interval: Duration::from_millis(limits::PING_INTERVAL_MS),
                idle_timeout: Duration::from_millis(limits::IDLE_TIMEOUT_MS),
                close_grace: Duration::from_millis(100),
                max_message_bytes: limits::MAX_MESSAGE_BYTES,
                history_on_join: limits::HISTORY_ON_JOIN,
            },
            shutdown: CancellationToken::new(),
            abandon: CancellationToken::new(),
        };
        let listen = LISTEN.parse().expect("a socket address");
        let registry_for_revoker = registry.clone();
        let listener = revoke::listener(store.clone(), revocations.clone(), registry.clone());
        let signals: Arc<dyn Signals> = Arc::new(MemoryHub::default().join(listener));
        let state = AppState {
            registry: registry.clone(),
            history,
            upgrades: Upgrades { registry, context: Arc::new(context), tasks: TaskTracker::new() },
            auth,
            access: Arc::new(Access::new(listen, &[], &[], None).expect("the default policy")),
            issuer: Arc::new(Issuer::new(IdentitiesMode::On, 10, Policy { lifetime_seconds: 86_400, groups: None })),
            admission: Admission::new(Caps { total: 1000, per_ip: 100 }),
            proxies: Arc::new(TrustedProxies::new(vec!["127.0.0.0/8".parse().expect("a network")])),
            api_key: Some(Arc::from(API_KEY)),
            revoker: Revoker::new(store, revocations, registry_for_revoker, signals),
            // Unlimited: the handshake target predicts every status from
            // the request alone.
            new_groups: Arc::new(NewGroupLimits::per_hour(0, 0)),
        };
        Self { state, sequencer }
    }
}

impl Default for Backend {
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
