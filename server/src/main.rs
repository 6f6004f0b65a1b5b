//! The `em-server` binary: parse arguments, run, turn an error into one line and an exit code.

use clap::Parser;
use em_server::cli::Command;
use em_server::config::{DEFAULT_ITERATIONS, MIN_ITERATIONS, PasswordHash};
use em_server::{Cli, Error};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::HashPassword { iterations }) = cli.command {
        return hash_password(iterations);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "em_server=info,warn".into()),
        )
        .init();
    let result = tokio::runtime::Runtime::new()
        .map_err(Error::from)
        .and_then(|rt| rt.block_on(em_server::run(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // 2 = the config file is wrong (like a usage error); 1 = anything else.
            std::process::ExitCode::from(
                if matches!(e, Error::Config { .. } | Error::ConfigRead { .. }) {
                    2
                } else {
                    1
                },
            )
        }
    }
}

/// `em-server hash-password`: one line of stdin in, one PHC string out.
fn hash_password(iterations: u32) -> std::process::ExitCode {
    // Checked before reading stdin: a hash the config would refuse is never printed.
    if iterations < MIN_ITERATIONS {
        eprintln!(
            "error: --iterations {iterations} is below the minimum of {MIN_ITERATIONS} (the default is {DEFAULT_ITERATIONS})"
        );
        return std::process::ExitCode::from(2);
    }
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("error: cannot read the password from stdin");
        return std::process::ExitCode::from(1);
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("error: give a non-empty password on stdin");
        return std::process::ExitCode::from(2);
    }
    println!("{}", PasswordHash::create(password, iterations));
    std::process::ExitCode::SUCCESS
}
