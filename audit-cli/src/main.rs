//! `audit`: the command-line tool of the audit framework.
//!
//! ```text
//! audit catalog check [FILE]          validate a catalog (and its lock file)
//! audit catalog lock  [FILE]          record every code in the lock file
//! audit catalog docs  [FILE] [-o OUT] Markdown reference of the events
//! ```
//!
//! Without `FILE`, the catalog is found as the macros find it, from the current
//! directory's crate (`AUDIT_CATALOG`, `[package.metadata.audit] catalog`, `audit.toml`).

mod catalog_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Declarative, compile-time-checked audit logging.
#[derive(Parser, Debug)]
#[command(name = "audit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, lock and document the event catalog (audit.toml).
    #[command(subcommand)]
    Catalog(catalog_cmd::CatalogCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog(cmd) => catalog_cmd::run(cmd),
    }
}
