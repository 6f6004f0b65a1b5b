//! em-server: the reference backend of embedded-messaging.
//!
//! Map of the crate:
//! - [`cli`], [`config`]: command line and the validated deployments file; [`clock`]: time;
//!   [`client`]: the client address that per-address limits count.
//! - [`store`]: SQLite tables named after the data model, migrated forward on open.
//! - [`routing`]: waiting list by priority, agents' presence, skills and capacity.
//! - [`engine`]: the store thread owning store + routing, with group commit; [`hub`]: fan-out;
//!   [`cluster`]: several nodes on one PostgreSQL, in one order.
//! - [`lifecycle`]: waiting (rules), assigning, rebuilding; [`ending`]: by agent or visitor;
//!   [`transfer`]: transfers and reopened conversations; [`sweep`]: idle conversations and
//!   retention, periodically.
//! - [`bot`]: the rule bot's script logic; [`triage`]: its turns stored in a conversation.
//! - [`limits`]: rates and quotas per socket, client address and end user;
//! - [`session`]: create, resume and send in conversations (both sockets use it);
//!   [`context`]: `setContext` checked against the deployment's pre-chat form.
//! - [`socket`]: the per-connection reader/writer loop; [`visitor`], [`agent`]: the two sockets;
//!   [`memory`]: freed memory returned to the system after a burst.
//! - [`signin`]: agent sign-in backoff, the password hashing cap and session tokens.
//! - [`identity`]: verified visitors' identity tokens (JWT) and their expiry.
//! - [`http`]: config endpoint, console, health, admin; [`metrics`]: report and Prometheus.
//! - [`listener`]: the accept loop with its timeouts and connection caps.
//! - [`assets`]: widget files and the demo site.

pub mod agent;
pub mod assets;
pub mod bot;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod context;
pub mod ending;
pub mod engine;
pub mod error;
pub mod http;
pub mod hub;
pub mod identity;
pub mod lifecycle;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod metrics;
pub mod routing;
pub mod session;
pub mod signin;
pub mod socket;
pub mod store;
pub mod sweep;
pub mod transfer;
pub mod triage;
pub mod visitor;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use em_protocol::paths;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

pub use crate::cli::Cli;
use crate::clock::{SharedClock, SystemClock};
pub use crate::config::Config;
use crate::engine::Engine;
pub use crate::error::{Error, Result};
pub use crate::store::Database;

/// What every handler shares: a cheap clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub widget_dir: Arc<PathBuf>,
    /// The deployments file, re-read by a reload (none when the config was given as text).
    pub config_path: Option<Arc<PathBuf>>,
    /// The figures `/metrics` shows, read at most once per few seconds.
    pub metrics: Arc<metrics::Cache>,
}

impl AppState {
    /// Opens (or creates) the database and rebuilds routing state from it.
    pub fn new(config: Config, db: &Database, widget_dir: PathBuf) -> Result<Self> {
        Self::with_clock(config, db, widget_dir, Arc::new(SystemClock))
    }

    /// Like [`AppState::new`] with another clock (tests script time with `ManualClock`).
    pub fn with_clock(
        config: Config,
        db: &Database,
        widget_dir: PathBuf,
        clock: SharedClock,
    ) -> Result<Self> {
        Ok(Self {
            engine: Arc::new(Engine::open(Arc::new(config), db, clock)?),
            widget_dir: Arc::new(widget_dir),
            config_path: None,
            metrics: Arc::default(),
        })
    }

    /// Re-reads the deployments file and swaps it in; an invalid file changes nothing.
    pub async fn reload(&self) -> Result<()> {
        let Some(path) = &self.config_path else {
            return Err(Error::peer(
                em_protocol::ErrorCode::NotFound,
                "no config file to reload",
            ));
        };
        let config = Config::load(path)?;
        for w in config.warnings() {
            tracing::warn!("{w}");
        }
        self.engine.reload(config).await?;
        tracing::info!(file = %path.display(), "config reloaded");
        Ok(())
    }
}

/// The messaging endpoint's routes.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route(paths::CONFIG, get(http::deployment_config))
        .route(paths::VISITOR_SOCKET, get(visitor::upgrade))
        .route(paths::AGENT_SOCKET, get(agent::upgrade))
        .route("/console", get(http::console_html))
        .route("/console/console.js", get(http::console_js))
        .route("/console/console.css", get(http::console_css))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::prometheus))
        .route("/admin/report", get(http::report))
        .route("/admin/reload", post(http::admin_reload))
        .fallback(assets::widget);
    secure(router)
        // One span per request (`RUST_LOG=tower_http=debug` shows method, path, status, latency).
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// `/metrics` alone, without the token and without agents' names: the `--metrics-listen`
/// address, for a scraper on a private network.
pub fn metrics_app(state: AppState) -> Router {
    secure(Router::new().route("/metrics", get(http::prometheus_open))).with_state(state)
}

/// The stand-in customer website.
pub fn site_app(site: assets::Site) -> Router {
    secure(Router::new().fallback(assets::site)).with_state(site)
}

/// On every response: no MIME sniffing (a JSON or text answer is never run as script or
/// style), and no full URL of the page in the `Referer` of requests that leave its origin.
fn secure<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(
            header::REFERRER_POLICY,
            "strict-origin-when-cross-origin",
        ))
}

/// Runs the server until SIGINT/SIGTERM. Prints the machine-readable `listening on` and
/// `site on` lines first (tests and scripts parse them), then hints for humans.
pub async fn run(cli: Cli) -> Result<()> {
    let config_path = cli.config.clone().ok_or_else(|| Error::Config {
        file: "(none)".into(),
        path: "--config".into(),
        message: "the deployments file is required".into(),
    })?;
    let config = Config::load(&config_path)?;
    for w in config.warnings() {
        tracing::warn!(file = %config_path.display(), "{w}");
    }
    let mut http = config.http.clone();
    let open_files = listener::raise_open_files_limit();
    let fitting = listener::fitting_max_connections(http.max_connections, open_files);
    if fitting < 1024 {
        tracing::warn!(
            open_files_limit = open_files,
            "only {fitting} connections fit under the open-files limit; raise it (ulimit -n)"
        );
    }
    tracing::info!(
        open_files_limit = open_files,
        max_connections = fitting,
        configured = http.max_connections,
        max_connections_per_address = http.max_connections_per_address,
        "connection caps"
    );
    http.max_connections = fitting;
    let database = cli.database();
    let mut state = AppState::new(config, &database, cli.widget_dir.clone())?;
    state.config_path = Some(Arc::new(config_path.clone()));
    reload_on_sighup(state.clone());
    let listener = bind(cli.listen).await?;
    let base_url = base_url_of(listener.local_addr()?);
    say(&format!("listening on {base_url}"));
    let site = match &cli.site_dir {
        Some(dir) => {
            let listener = bind(cli.site_listen).await?;
            let site_url = base_url_of(listener.local_addr()?);
            say(&format!("site on {site_url}"));
            Some((
                listener,
                assets::Site {
                    dir: dir.clone(),
                    base_url: base_url.clone(),
                },
                site_url,
            ))
        }
        None => None,
    };
    let metrics = match cli.metrics_listen {
        Some(addr) => {
            let listener = bind(addr).await?;
            say(&format!(
                "metrics on {}/metrics",
                base_url_of(listener.local_addr()?)
            ));
            Some(listener)
        }
        None => None,
    };
    say(&format!(
        "agent console: {base_url}/console (agents are configured in {})",
        config_path.display()
    ));
    if let Some((_, _, url)) = &site {
        say(&format!("demo page: {url}/"));
    }
    tracing::info!(db = %database, widget_dir = %cli.widget_dir.display(), "started");
    let hub = state.engine.hub.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let main = listener::serve(listener, app(state.clone()), &http, stopped());
    // The site and metrics listeners are small and trusted-ish: default caps and timeouts.
    let defaults = config::HttpSettings::default();
    let site = site
        .map(|(listener, site, _)| listener::serve(listener, site_app(site), &defaults, stopped()));
    let metrics =
        metrics.map(|listener| listener::serve(listener, metrics_app(state), &defaults, stopped()));
    let serving =
        async move { tokio::try_join!(main, optional(site), optional(metrics)).map(|_| ()) };
    // Graceful: stop accepting, close every socket with the shutdown code (clients reconnect
    // and resume; every acknowledged entry is already on disk), let requests in flight
    // finish, at most 5 s. Upgraded sockets are no longer the HTTP server's: the hub knows
    // them, and the process waits until each has sent its close frame.
    let mut serving = std::pin::pin!(serving);
    tokio::select! {
        r = &mut serving => return Ok(r?),
        () = shutdown() => {}
    }
    tracing::info!(sockets = hub.live_connections(), "shutting down");
    let _ = stop_tx.send(true);
    hub.close_all();
    let drained = async {
        let (r, ()) = tokio::join!(serving, hub.all_closed());
        r
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), drained).await {
        Ok(r) => r?,
        Err(_) => tracing::warn!(
            sockets = hub.live_connections(),
            "connections still open after 5 s; stopping anyway"
        ),
    }
    Ok(())
}

/// A listener that may not be configured.
async fn optional(f: Option<impl Future<Output = std::io::Result<()>>>) -> std::io::Result<()> {
    match f {
        Some(f) => f.await,
        None => Ok(()),
    }
}

/// SIGHUP re-reads the deployments file (branding, bot, rules, agents) without a restart.
fn reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = state.reload().await {
                tracing::error!(error = %e, "config reload failed; keeping the current config");
            }
        }
    });
}

/// Serves `app` on `listener` with the default `[http]` settings. Small frames (acks,
/// entries) go out at once: Nagle's algorithm would hold them back for the peer's delayed
/// ACK (~40 ms).
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    serve_until(listener, app, std::future::pending()).await
}

/// [`serve`] until `stop` resolves, then drains the connections in flight.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve(listener, app, &config::HttpSettings::default(), stop).await
}

/// One line on stdout, flushed. A closed stdout (the reader went away) must not stop the
/// server, unlike `println!`, which panics.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// `http://host:port`; an unspecified address is reachable locally as 127.0.0.1.
fn base_url_of(mut addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
