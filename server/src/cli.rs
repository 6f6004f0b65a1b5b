//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Reference backend of embedded-messaging: config endpoint, widget assets, visitor and
/// agent WebSockets, agent console.
#[derive(Debug, Clone, Parser)]
#[command(name = "em-server", version)]
pub struct Cli {
    /// Deployments, queues and agents (TOML); see server/CONFIG.md.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address of the messaging endpoint (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file, created on first run.
    #[arg(long, value_name = "FILE", default_value = "em.sqlite")]
    pub db: PathBuf,
    /// Directory with the built widget (wasm-pack output), served under `.../assets/js/`.
    #[arg(long, value_name = "DIR", default_value = "pkg")]
    pub widget_dir: PathBuf,
    /// Serve this directory as a stand-in customer website on `--site-listen`.
    #[arg(long, value_name = "DIR")]
    pub site_dir: Option<PathBuf>,
    /// Address of the site listener (another origin than the messaging endpoint).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub site_listen: SocketAddr,
}
