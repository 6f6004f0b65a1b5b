//! em-server: the reference backend of embedded-messaging.
//!
//! Map of the crate:
//! - [`cli`], [`config`]: command line and the validated deployments file.
//! - [`store`]: SQLite tables named after the data model; [`routing`]: queues and capacity.
//! - [`engine`]: the store thread owning store + routing, with group commit; [`hub`]: fan-out.
//! - [`lifecycle`]: assigning, ending, rebuilding routing from the store.
//! - [`session`]: create, resume and send in conversations (both sockets use it).
//! - [`socket`]: the per-connection reader/writer loop; [`visitor`], [`agent`]: the two sockets.
//! - [`http`]: config endpoint, console, health; [`assets`]: widget files and the demo site.

pub mod agent;
pub mod assets;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod http;
pub mod hub;
pub mod lifecycle;
pub mod routing;
pub mod session;
pub mod socket;
pub mod store;
pub mod visitor;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use em_protocol::paths;
use tokio::net::TcpListener;

pub use crate::cli::Cli;
pub use crate::config::Config;
use crate::engine::Engine;
pub use crate::error::{Error, Result};

/// What every handler shares: a cheap clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub widget_dir: Arc<PathBuf>,
}

impl AppState {
    /// Opens (or creates) the database and rebuilds routing state from it.
    pub fn new(config: Config, db: &Path, widget_dir: PathBuf) -> Result<Self> {
        Ok(Self {
            engine: Arc::new(Engine::open(Arc::new(config), db)?),
            widget_dir: Arc::new(widget_dir),
        })
    }
}

/// The messaging endpoint's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(paths::CONFIG, get(http::deployment_config))
        .route(paths::VISITOR_SOCKET, get(visitor::upgrade))
        .route(paths::AGENT_SOCKET, get(agent::upgrade))
        .route("/console", get(http::console_html))
        .route("/console/console.js", get(http::console_js))
        .route("/console/console.css", get(http::console_css))
        .route("/healthz", get(http::healthz))
        .fallback(assets::widget)
        .with_state(state)
}

/// The stand-in customer website.
pub fn site_app(site: assets::Site) -> Router {
    Router::new().fallback(assets::site).with_state(site)
}

/// Runs the server until Ctrl-C. Prints the machine-readable `listening on` and `site on`
/// lines first (tests and scripts parse them), then hints for humans.
pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::load(&cli.config)?;
    let state = AppState::new(config, &cli.db, cli.widget_dir.clone())?;
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
    say(&format!(
        "agent console: {base_url}/console (agents are configured in {})",
        cli.config.display()
    ));
    if let Some((_, _, url)) = &site {
        say(&format!("demo page: {url}/"));
    }
    tracing::info!(db = %cli.db.display(), widget_dir = %cli.widget_dir.display(), "started");
    let main = serve(listener, app(state));
    let serving = async move {
        match site {
            Some((listener, site, _)) => {
                tokio::try_join!(main, axum::serve(listener, site_app(site)).into_future())
                    .map(|_| ())
            }
            None => main.await,
        }
    };
    // No graceful drain: every acknowledged entry is already on disk, and open sockets
    // would keep a drain waiting forever. Clients reconnect and resume.
    tokio::select! {
        r = serving => r?,
        () = shutdown() => tracing::info!("shutting down"),
    }
    Ok(())
}

/// Serves `app` on `listener`. Small frames (acks, entries) go out at once: Nagle's
/// algorithm would hold them back for the peer's delayed ACK (~40 ms).
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app).await
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
