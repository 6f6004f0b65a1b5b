//! One PostgreSQL connection that any thread may use, inside an async runtime or not.
//!
//! Like the sync `postgres` crate, each connection has a small tokio runtime of its own, and the
//! calling thread drives the connection's I/O while it waits for an answer (one round trip,
//! no hand-over between threads: on this 2-core machine 34–43 µs per `SELECT 1`, against 156 µs
//! with the I/O on a thread of its own). Unlike that crate, a call made on a thread that runs
//! tokio (the store is opened and its routing rebuilt inside the server's runtime, in
//! `Engine::open`, and in `#[tokio::test]`s), where tokio refuses to block, waits on a helper
//! thread instead of panicking. The store thread is not such a thread: it takes the fast path.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::error::{Error, Result};

/// A server that does not answer within this is reported at start instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) struct Conn {
    client: Client,
    /// Runs the connection's task while a call waits; `None` only while dropping.
    runtime: Option<Runtime>,
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

impl Drop for Conn {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio refuses inside another runtime's task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `request` on `runtime` until it is answered, driving the connection meanwhile.
fn drive<T: Send>(runtime: &Runtime, request: impl Future<Output = T> + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(request);
    }
    std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(request))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl Conn {
    pub fn connect(url: &str) -> Result<Self> {
        let (client, runtime) = connect(url)?;
        Ok(Self {
            client,
            runtime: Some(runtime),
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
        let (client, runtime) = connect(&self.url)?;
        self.client = client;
        if let Some(old) = self.runtime.replace(runtime) {
            old.shutdown_background();
        }
        self.statements.clear();
        self.in_transaction = false;
        self.aborted = false;
        Ok(())
    }

    /// Sends one request and waits for its answer.
    fn run<'a, T: Send>(
        &'a self,
        request: impl Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a,
    ) -> Result<T> {
        match &self.runtime {
            Some(runtime) => Ok(drive(runtime, request)?),
            // Only `drop` takes the runtime.
            None => Err(Error::Stopped),
        }
    }

    /// One request's answer, noting a failure inside the transaction.
    fn checked<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() && self.in_transaction {
            self.aborted = true;
        }
        result
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.run(self.client.prepare(sql));
        let statement = self.checked(statement)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &'static str, params: Params) -> Result<u64> {
        let statement = self.statement(sql)?;
        let result = self.run(self.client.execute(&statement, params));
        self.checked(result)
    }

    pub fn query(&mut self, sql: &'static str, params: Params) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        let result = self.run(self.client.query(&statement, params));
        self.checked(result)
    }

    pub fn query_opt(&mut self, sql: &'static str, params: Params) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        let result = self.run(self.client.query_opt(&statement, params));
        self.checked(result)
    }

    pub fn query_one(&mut self, sql: &'static str, params: Params) -> Result<Row> {
        let statement = self.statement(sql)?;
        let result = self.run(self.client.query_one(&statement, params));
        self.checked(result)
    }

    /// Statements without parameters (transaction control, the schema), unprepared.
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        let result = self.run(self.client.batch_execute(sql));
        self.checked(result)
    }

    /// Starts a transaction, on a new connection if the server closed this one. The client
    /// may learn that only from this `BEGIN` (the connection's task sees the close when it
    /// next runs), and a `BEGIN` fails on a connection that is going or gone, so a failed one
    /// is retried once on a new connection: it had no effect to repeat.
    pub fn begin(&mut self) -> Result<()> {
        if self.client.is_closed() {
            self.reconnect()?;
        }
        if self.run(self.client.batch_execute("BEGIN")).is_err() {
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
            let _ = self.run(self.client.batch_execute("ROLLBACK"));
        }
        self.in_transaction = false;
        self.aborted = false;
    }

    /// After `ROLLBACK TO` succeeded the transaction is usable again.
    pub fn rolled_back_to_savepoint(&mut self) {
        self.aborted = false;
    }
}

/// Connects; the connection's task runs on the returned runtime whenever a call waits on it.
fn connect(url: &str) -> Result<(Client, Runtime)> {
    let shown = super::redacted(url);
    let open_err = move |source| Error::OpenPostgres { url: shown, source };
    let mut config: tokio_postgres::Config = url.parse().map_err(open_err.clone())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (client, connection) = match drive(&runtime, config.connect(NoTls)) {
        Ok(connected) => connected,
        Err(e) => {
            runtime.shutdown_background();
            return Err(open_err(e));
        }
    };
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %crate::error::describe_postgres(&e), "database connection lost");
        }
    });
    Ok((client, runtime))
}
