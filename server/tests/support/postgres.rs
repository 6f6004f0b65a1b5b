//! A throwaway PostgreSQL cluster per test process, and a fresh database on it for each test.
//!
//! The first `fresh_database()` of a test process runs `initdb` in a new temporary directory and
//! starts `postgres` on a free 127.0.0.1 port (trust auth, fsync off, socket in that directory);
//! with `EM_TEST_DATABASE_URL` set it uses that server instead and starts nothing. Nobody starts
//! a service by hand, and nothing outlives the process:
//!
//! Cleanup. The cluster sits in a `static`, which Rust never drops, and a test process can also
//! die by a panic in another thread, `kill -9` or Ctrl-C. So before `initdb`, a watchdog shell
//! starts next to the cluster, in its own process group (Ctrl-C of the test does not reach it)
//! with its stdout and stderr on /dev/null (it never holds a runner's output pipe open). Its
//! stdin is a pipe whose only write end this process holds; the kernel closes that end when the
//! process exits, however it exits, and the watchdog, blocked reading until then, stops the
//! cluster (`pg_ctl stop -m immediate`) and removes the directory. A pipe rather than polling
//! `kill -0 <pid>`: the pid may be reused, and the `postgres` user may not signal root's test.
//! `tests/postgres_cluster.rs` proves it on a child test process that exits normally and on one
//! killed with SIGKILL: its directory goes and no process runs from it.
//!
//! PostgreSQL refuses to run as root, so as root `initdb` and `pg_ctl` run as the `postgres` user
//! that Debian's package creates (`runuser -u postgres`), owning the directory.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Names the server to use instead of starting a cluster (a role that may `CREATE DATABASE`).
pub const URL_VAR: &str = "EM_TEST_DATABASE_URL";

/// Only a port taken between probing and binding is retried; any other failure is reported.
const START_ATTEMPTS: usize = 3;

/// Stops the cluster and removes its directory once stdin reaches end of file. `$1` is the
/// directory, `$2` pg_ctl, and any further arguments come before pg_ctl (`runuser -u postgres
/// --` as root).
const WATCHDOG: &str = r#"dir=$1; pg_ctl=$2; shift 2
cat >/dev/null
"$@" "$pg_ctl" -D "$dir/data" stop -m immediate -w
rm -rf "$dir""#;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH): \
         run `apt-get install postgresql` as root (`cargo xtask test` does), or set {URL_VAR}"
    )]
    NotInstalled,
    #[error(
        "running as root, but there is no `postgres` user to run PostgreSQL as: run \
         `apt-get install postgresql` as root (it creates the user), or set {URL_VAR}"
    )]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} failed: {output}")]
    Command { what: String, output: String },
    #[error("{what}: {source}")]
    Sql {
        what: String,
        source: postgres::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// A running PostgreSQL for this test process: the one it started, or `EM_TEST_DATABASE_URL`'s.
pub struct Cluster {
    /// The maintenance database the tests' databases are created from.
    admin_url: String,
    /// The cluster's directory (data, socket, log); `None` on a server named by the variable.
    dir: Option<PathBuf>,
    /// Time from `initdb` to accepting connections; `None` on a server named by the variable.
    started_in: Option<Duration>,
    /// Never written: its end of file, when this process exits, is the watchdog's signal.
    _watchdog: Option<ChildStdin>,
}

static CLUSTER: LazyLock<Result<Cluster, ClusterError>> =
    LazyLock::new(|| match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Ok(Cluster::external(url)),
        _ => Cluster::start(),
    });

/// This process's cluster, started on first use; panics with the one-line reason if it cannot.
pub fn cluster() -> &'static Cluster {
    match &*CLUSTER {
        Ok(cluster) => cluster,
        Err(e) => panic!("{e}"),
    }
}

/// A new, empty database of its own for the calling test: its `postgres://` URL.
pub fn fresh_database() -> String {
    cluster().fresh_database().unwrap_or_else(|e| panic!("{e}"))
}

impl Cluster {
    fn external(admin_url: String) -> Cluster {
        Cluster {
            admin_url,
            dir: None,
            started_in: None,
            _watchdog: None,
        }
    }

    fn start() -> Result<Cluster, ClusterError> {
        let started = Instant::now();
        let bin = bin_dir().ok_or(ClusterError::NotInstalled)?;
        let runner = Runner::for_this_user()?;
        let dir = tempfile::Builder::new()
            .prefix("em-pg-")
            .tempdir()
            .map_err(io("cannot create the cluster's temporary directory"))?
            .keep();
        runner.hand_over(&dir)?;
        let watchdog = watchdog(&runner, &bin, &dir)?;
        let data = dir.join("data");
        runner.run(
            "initdb",
            runner
                .command(&bin.join("initdb"), &dir)
                .arg("-D")
                .arg(&data)
                .args(["--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync"),
        )?;
        configure(&data, &dir)?;
        let port = start_on_free_port(&runner, &bin, &dir)?;
        let started_in = started.elapsed();
        eprintln!(
            "test cluster: PostgreSQL from {} on 127.0.0.1:{port} in {}, ready in {started_in:.2?}",
            bin.display(),
            dir.display(),
        );
        Ok(Cluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir: Some(dir),
            started_in: Some(started_in),
            _watchdog: Some(watchdog),
        })
    }

    /// The maintenance database's URL (`postgres://…/postgres` on a started cluster).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The cluster's directory (`data/`, the socket, `log`); `None` on an external server.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Time from `initdb` to accepting connections; `None` on an external server.
    pub fn started_in(&self) -> Option<Duration> {
        self.started_in
    }

    /// Creates `em_<random>` and returns its URL.
    pub fn fresh_database(&self) -> Result<String, ClusterError> {
        let name = format!("em_{:016x}", rand::random::<u64>());
        let admin_url = self.admin_url.clone();
        let create = format!("CREATE DATABASE {name}");
        // The sync client runs its own runtime, which panics inside a tokio test's runtime:
        // a plain thread keeps this callable from both sync and async tests.
        std::thread::spawn(move || -> Result<(), ClusterError> {
            let sql = |what: &str| {
                let what = format!("{what} ({admin_url})");
                move |source| ClusterError::Sql { what, source }
            };
            let mut admin = connect(&admin_url).map_err(sql("cannot connect"))?;
            admin.batch_execute(&create).map_err(sql("CREATE DATABASE"))
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(with_database(&self.admin_url, &name))
    }
}

/// A sync client with a connect timeout, as a safety net against a hung server.
pub fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    url.parse::<postgres::Config>()?
        .connect_timeout(Duration::from_secs(30))
        .connect(postgres::NoTls)
}

/// `url` with its database replaced by `name` (any `?query` kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, else the PATH's.
fn bin_dir() -> Option<PathBuf> {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<f64>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, bin)| bin);
    debian.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

/// How to run PostgreSQL's programs: directly, or as root through the `postgres` user.
enum Runner {
    Direct,
    AsPostgres { uid: u32, gid: u32 },
}

impl Runner {
    fn for_this_user() -> Result<Runner, ClusterError> {
        let id = |args: &[&str]| -> Option<u32> {
            let out = Command::new("id").args(args).output().ok()?;
            out.status.success().then_some(())?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        if id(&["-u"]) != Some(0) {
            return Ok(Runner::Direct);
        }
        match (id(&["-u", "postgres"]), id(&["-g", "postgres"])) {
            (Some(uid), Some(gid)) => Ok(Runner::AsPostgres { uid, gid }),
            _ => Err(ClusterError::NoPostgresUser),
        }
    }

    /// What comes before a PostgreSQL program on its command line.
    fn prefix(&self) -> &'static [&'static str] {
        match self {
            Runner::Direct => &[],
            Runner::AsPostgres { .. } => &["runuser", "-u", "postgres", "--"],
        }
    }

    /// Gives `dir` to the user the cluster runs as.
    fn hand_over(&self, dir: &Path) -> Result<(), ClusterError> {
        match self {
            Runner::Direct => Ok(()),
            Runner::AsPostgres { uid, gid } => {
                std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                    .map_err(io(format!("cannot give {} to postgres", dir.display())))
            }
        }
    }

    /// `program` as the cluster's user, in its own process group, working in `dir` (the
    /// `postgres` user may not enter the test's working directory).
    fn command(&self, program: &Path, dir: &Path) -> Command {
        let mut command = match self.prefix() {
            [first, rest @ ..] => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
            [] => Command::new(program),
        };
        command
            .current_dir(dir)
            .stdin(Stdio::null())
            .process_group(0);
        command
    }

    /// Runs to completion; a failure carries the program's own output.
    fn run(&self, what: &str, command: &mut Command) -> Result<Output, ClusterError> {
        let out = command.output().map_err(io(format!("cannot run {what}")))?;
        if out.status.success() {
            return Ok(out);
        }
        Err(ClusterError::Command {
            what: what.to_string(),
            output: format!(
                "{}{}{}",
                out.status,
                one_line(&out.stdout),
                one_line(&out.stderr)
            ),
        })
    }
}

fn one_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        text
    } else {
        format!("; {text}")
    }
}

/// Starts the watchdog (see the module's doc) and returns the write end of its stdin.
fn watchdog(runner: &Runner, bin: &Path, dir: &Path) -> Result<ChildStdin, ClusterError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("em-pg-watchdog")
        .arg(dir)
        .arg(bin.join("pg_ctl"))
        .args(runner.prefix())
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io("cannot start the cluster's watchdog"))?;
    child
        .stdin
        .take()
        .ok_or_else(|| io("the watchdog's stdin")(std::io::ErrorKind::BrokenPipe.into()))
}

/// Settings for a disposable cluster: loopback only, socket in its directory, durability off
/// (nothing here must survive a crash), room for the many connections of parallel tests.
fn configure(data: &Path, dir: &Path) -> Result<(), ClusterError> {
    let socket_dir = dir.display().to_string().replace('\'', "''");
    let settings = format!(
        "\n# em-server tests: a throwaway cluster\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{socket_dir}'\n\
         max_connections = 200\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n"
    );
    let conf = data.join("postgresql.conf");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut f| f.write_all(settings.as_bytes()))
        .map_err(io(format!("cannot write {}", conf.display())))
}

/// Starts the cluster on a port that was free a moment ago; another process may take it in
/// between, so a failure to bind is retried on a new port.
fn start_on_free_port(runner: &Runner, bin: &Path, dir: &Path) -> Result<u16, ClusterError> {
    let log = dir.join("log");
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A fresh log per attempt, so a bind error is read from this attempt only.
        let _ = std::fs::remove_file(&log);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("cannot find a free loopback port"))?
            .port();
        let started = runner.run(
            "pg_ctl start",
            runner
                .command(&bin.join("pg_ctl"), dir)
                .arg("-D")
                .arg(dir.join("data"))
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "120", "-o", &format!("-p {port}"), "start"]),
        );
        match started {
            Ok(_) => return Ok(port),
            Err(ClusterError::Command { what, output }) => {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                if attempt < START_ATTEMPTS && log_text.contains("could not bind") {
                    continue;
                }
                let tail: Vec<&str> = log_text.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(ClusterError::Command {
                    what,
                    output: format!("{output}; log: {}", tail.join(" | ")),
                });
            }
            Err(e) => return Err(e),
        }
    }
}
