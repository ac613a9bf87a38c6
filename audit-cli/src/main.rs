//! `audit`: the command-line tool of the audit framework.
//!
//! ```text
//! audit catalog check [FILE]          validate a catalog (and its lock file)
//! audit catalog lock  [FILE]          record every code in the lock file
//! audit catalog docs  [FILE] [-o OUT] Markdown reference of the events
//! audit query  --db audit.db [--since 2d] [--event E] [--actor A] [--tenant T] [--entity type:id] [--json]
//! audit show   ID --db audit.db       one record, its difference as before/after
//! audit verify --db audit.db [--checkpoint CP --public-key K.pub]
//!                                     walk the hash chain (and check checkpoints); exit 1 if broken
//! audit keygen --out K                checkpoint signing key pair (K, K.pub)
//! audit checkpoint --db audit.db --key K [-o CP]   sign the store's head
//! audit purge  --db audit.db --older-than 90d [--export old.jsonl]
//! audit purge  --db audit.db --tenant acme [--older-than 90d] [--export acme.jsonl]
//! audit tail   --db audit.db          follow new records
//! audit ingest --from nats://127.0.0.1:4222 --stream AUDIT --to postgres://…
//! audit serve  --db audit.db [--addr 127.0.0.1:8080] [--token-file TOKENS]
//! audit store roles --db postgres://postgres@… --owner R --writer R --reader R --admin R
//! ```
//!
//! `--db` defaults to `$AUDIT_DB`, then `audit.db`; a keyed store's HMAC key is read
//! from `$AUDIT_HMAC_KEY` (`--key-env` names another variable).
//!
//! Without `FILE`, the catalog is found as the macros find it, from the current
//! directory's crate (`AUDIT_CATALOG`, `[package.metadata.audit] catalog`, `audit.toml`).

mod admin_cmd;
mod catalog_cmd;
mod history_cmd;
mod relay_cmd;
mod render;
mod serve_cmd;
mod store_cmd;
mod verify_lines;

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
    /// List records matching filters, newest first (a page at a time).
    Query(Box<store_cmd::QueryCmd>),
    /// Print one record in full, its difference as a coloured before/after.
    Show(store_cmd::ShowCmd),
    /// Every record of one entity, oldest first, and its state at a time (--as-of).
    History(history_cmd::HistoryCmd),
    /// Walk the store's hash chain and name the first record that breaks it (exit 1).
    Verify(store_cmd::VerifyCmd),
    /// Sign the store's head with a checkpoint key: a witness to keep outside the database.
    Checkpoint(store_cmd::CheckpointCmd),
    /// Make a checkpoint signing key pair (Ed25519).
    Keygen(store_cmd::KeygenCmd),
    /// Remove old records, optionally exporting them to JSON Lines first.
    Purge(store_cmd::PurgeCmd),
    /// Print the newest records, then follow new ones.
    Tail(store_cmd::TailCmd),
    /// Move records from a NATS JetStream stream into a store, exactly once.
    Ingest(store_cmd::IngestCmd),
    /// Move committed rows of an application's transactional outbox into a store, exactly once.
    Relay(relay_cmd::RelayCmd),
    /// Serve the store's records over HTTP, read-only (a JSON API; tokens per tenant).
    Serve(serve_cmd::ServeCmd),
    /// Administer a store: least-privileged PostgreSQL roles.
    #[command(subcommand)]
    Store(admin_cmd::StoreCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog(cmd) => catalog_cmd::run(cmd),
        Command::Query(cmd) => store_cmd::query(*cmd),
        Command::Relay(cmd) => relay_cmd::relay(cmd),
        Command::History(cmd) => history_cmd::history(cmd),
        Command::Show(cmd) => store_cmd::show(cmd),
        Command::Verify(cmd) => store_cmd::verify(cmd),
        Command::Purge(cmd) => store_cmd::purge(cmd),
        Command::Checkpoint(cmd) => store_cmd::checkpoint(cmd),
        Command::Keygen(cmd) => store_cmd::keygen(cmd),
        Command::Tail(cmd) => store_cmd::tail(cmd),
        Command::Ingest(cmd) => store_cmd::ingest(cmd),
        Command::Serve(cmd) => serve_cmd::serve(cmd),
        Command::Store(cmd) => admin_cmd::run(cmd),
    }
}
