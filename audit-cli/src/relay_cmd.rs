//! `audit relay`: committed rows of an application's transactional outbox into a
//! store, exactly once (see `audit_runtime::outbox`). Killing it at any moment loses
//! and duplicates nothing: the next run goes on from the rows still in the outbox.
//! A store that refuses a batch is retried; losing the outbox's database ends the
//! process with an error, for its supervisor to restart it.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use audit_runtime::outbox::{OutboxSource, Relay, postgres::PostgresOutbox, sqlite::SqliteOutbox};
use audit_runtime::sinks::Sink;
use clap::Args;

use crate::store_cmd::{TargetArgs, finish};

/// `audit relay`.
#[derive(Args, Debug)]
pub struct RelayCmd {
    /// The application's database holding `audit_outbox`: a SQLite file or a
    /// PostgreSQL URL.
    #[arg(long)]
    from: String,
    #[command(flatten)]
    target: TargetArgs,
    /// This relay's name: its chain and its count in `audit_outbox_relay`. Relays
    /// running side by side each need their own.
    #[arg(long, default_value = "relay")]
    name: String,
    /// Rows per batch (one transaction in each database).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// How long to wait when the outbox is empty.
    #[arg(long, default_value = "500ms")]
    interval: humantime::Duration,
    /// Exit once the outbox is empty (default: run until stopped).
    #[arg(long)]
    exit_when_empty: bool,
}

pub fn relay(cmd: RelayCmd) -> ExitCode {
    finish((|| {
        let target = cmd.target.open()?;
        if cmd.from.starts_with("postgres://") || cmd.from.starts_with("postgresql://") {
            let source = PostgresOutbox::connect(&cmd.from).map_err(|e| e.to_string())?;
            run(&cmd, source, target)
        } else {
            let source = SqliteOutbox::open(&cmd.from).map_err(|e| e.to_string())?;
            run(&cmd, source, target)
        }
    })())
}

fn run(
    cmd: &RelayCmd,
    source: impl OutboxSource,
    target: Box<dyn Sink>,
) -> Result<ExitCode, String> {
    let mut relay = Relay::with_target(source, target)
        .name(&cmd.name)
        .batch(cmd.batch);
    let report = if cmd.exit_when_empty {
        relay.drain()
    } else {
        relay.run(cmd.interval.into(), &AtomicBool::new(false))
    }
    .map_err(|e| e.to_string())?;
    println!(
        "relayed {} records in {} batches",
        report.delivered, report.batches
    );
    Ok(ExitCode::SUCCESS)
}
