//! One PostgreSQL connection that any thread may use, async runtime or not.
//!
//! Why not the sync `postgres` crate: it drives each call with its own tokio runtime's
//! `block_on`, which panics on a thread that already runs tokio, and the store is opened and
//! its routing rebuilt inside the server's runtime (`Engine::open`) and in `#[tokio::test]`s.
//! Here the connection's I/O runs on a thread of its own, and a call only waits for its answer
//! (`futures::executor::block_on` on the client's channel), so it works from any thread.

use std::collections::HashMap;
use std::time::Duration;

use futures::executor::block_on;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::error::{Error, Result};

/// A server that does not answer within this is reported at start instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) struct Conn {
    client: Client,
    /// Kept to reconnect after the server closed the connection (never printed: it may hold
    /// a password).
    url: String,
    /// Prepared once per connection: the hot path parses no SQL.
    statements: HashMap<&'static str, Statement>,
    in_transaction: bool,
    /// A statement failed in the transaction outside any savepoint rolled back since: the
    /// server has aborted the transaction, and its COMMIT would silently roll back.
    aborted: bool,
}

impl Conn {
    pub fn connect(url: &str) -> Result<Self> {
        Ok(Self {
            client: connect(url)?,
            url: url.to_string(),
            statements: HashMap::new(),
            in_transaction: false,
            aborted: false,
        })
    }

    /// A fresh connection in place of one the server closed (a restart, a failover, a killed
    /// backend), so that the next group runs instead of every job failing from now on.
    fn reconnect(&mut self) -> Result<()> {
        tracing::warn!("database connection closed; reconnecting");
        self.client = connect(&self.url)?;
        self.statements.clear();
        self.in_transaction = false;
        self.aborted = false;
        Ok(())
    }

    /// One request's answer, noting a failure inside the transaction.
    fn checked<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T> {
        if result.is_err() && self.in_transaction {
            self.aborted = true;
        }
        Ok(result?)
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = block_on(self.client.prepare(sql));
        let statement = self.checked(statement)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &'static str, params: Params) -> Result<u64> {
        let statement = self.statement(sql)?;
        let result = block_on(self.client.execute(&statement, params));
        self.checked(result)
    }

    pub fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let result = block_on(self.client.query(&statement, params));
        self.checked(result)
    }

    pub fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        let result = block_on(self.client.query_opt(&statement, params));
        self.checked(result)
    }

    pub fn query_one(&mut self, sql: &'static str, params: Params) -> Result<Row> {
        let statement = self.statement(sql)?;
        let result = block_on(self.client.query_one(&statement, params));
        self.checked(result)
    }

    /// Statements without parameters (transaction control, the schema), unprepared.
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        let result = block_on(self.client.batch_execute(sql));
        self.checked(result)
    }

    /// Starts a transaction, on a new connection if the server closed this one. The client
    /// may learn that only from this `BEGIN` (its I/O thread notices the close a moment after
    /// the call that failed before), and a `BEGIN` fails on a connection that is going or gone,
    /// so a failed one is retried once on a new connection: it had no effect to repeat.
    pub fn begin(&mut self) -> Result<()> {
        if self.client.is_closed() {
            self.reconnect()?;
        }
        if block_on(self.client.batch_execute("BEGIN")).is_err() {
            self.reconnect()?;
            self.batch("BEGIN")?;
        }
        self.in_transaction = true;
        self.aborted = false;
        Ok(())
    }

    /// Commits, or reports a transaction the server aborted as not committed.
    pub fn commit(&mut self) -> Result<()> {
        if self.aborted {
            self.rollback();
            return Err(Error::CommitFailed);
        }
        let committed = self.batch("COMMIT");
        self.in_transaction = false;
        committed
    }

    pub fn rollback(&mut self) {
        if self.in_transaction {
            let _ = block_on(self.client.batch_execute("ROLLBACK"));
        }
        self.in_transaction = false;
        self.aborted = false;
    }

    /// After `ROLLBACK TO` succeeded the transaction is usable again.
    pub fn rolled_back_to_savepoint(&mut self) {
        self.aborted = false;
    }
}

/// Connects, the connection's I/O driven by a thread of its own until the client is dropped.
fn connect(url: &str) -> Result<Client> {
    let shown = super::redacted(url);
    let open_err = move |source| Error::OpenPostgres { url: shown, source };
    let mut config: tokio_postgres::Config = url.parse().map_err(open_err.clone())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("em-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = tx.send(Err(Error::Io(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        let _ = tx.send(Ok(client));
                        if let Err(e) = connection.await {
                            tracing::warn!(error = %crate::error::describe_postgres(&e), "database connection lost");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(open_err(e)));
                    }
                }
            });
        })?;
    rx.recv().map_err(|_| Error::Stopped)?
}
