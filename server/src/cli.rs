//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Reference backend of embedded-messaging: config endpoint, widget assets, visitor and
/// agent WebSockets, agent console, metrics.
#[derive(Debug, Clone, Parser)]
#[command(name = "em-server", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Deployments, queues and agents (TOML); see server/CONFIG.md. SIGHUP re-reads it.
    #[arg(long, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Address of the messaging endpoint (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file, created on first run and migrated forward on start.
    #[arg(long, value_name = "FILE", default_value = "em.sqlite")]
    pub db: PathBuf,
    /// PostgreSQL instead of the SQLite file (`postgres://user:password@host:port/database`),
    /// for running several nodes on one database; its schema is migrated forward on start.
    #[arg(long, value_name = "URL", conflicts_with = "db")]
    pub database_url: Option<String>,
    /// Directory with the built widget (wasm-pack output), served under `.../assets/js/`.
    #[arg(long, value_name = "DIR", default_value = "pkg")]
    pub widget_dir: PathBuf,
    /// Serve this directory as a stand-in customer website on `--site-listen`.
    #[arg(long, value_name = "DIR")]
    pub site_dir: Option<PathBuf>,
    /// Address of the site listener (another origin than the messaging endpoint).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub site_listen: SocketAddr,
    /// Also serve `/metrics` on this address, without the admin token and without agents'
    /// names (for a Prometheus scraper on a private network). On the main address `/metrics`
    /// needs `Authorization: Bearer <[admin] token>`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print a `password_hash` for an agent: reads the password from stdin (one line).
    HashPassword {
        /// PBKDF2 iterations (at least 100,000: fewer are refused).
        #[arg(long, default_value_t = crate::config::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
}

impl Cli {
    /// The database the options select.
    pub fn database(&self) -> crate::store::Database {
        match &self.database_url {
            Some(url) => crate::store::Database::Postgres(url.clone()),
            None => crate::store::Database::Sqlite(self.db.clone()),
        }
    }
}
