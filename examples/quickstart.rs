//! The quickstart: annotated handlers on the MnoEnterprise catalog write their audit
//! trail into the embedded SQLite store; the program then reads it back (all of it,
//! one tenant's view, the failures, an entity's before/after), verifies the hash
//! chain and prints which declared events no code emits.
//!
//! ```sh
//! cargo run --example quickstart                  # store in the target directory
//! cargo run --example quickstart -- --db audit.db # or a file of your choice
//! ```

mod mnoe_app;

use std::error::Error;
use std::path::PathBuf;

use audit::sinks::SinkOptions;
use audit::store::Sqlite;
use audit::store::{Query, Store};
use audit::{Auditor, OutcomeKind, Record};

/// `--db PATH`, or a fresh store next to this program in the target directory.
fn store_path() -> Result<PathBuf, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        return match (arg.as_str(), args.next()) {
            ("--db", Some(path)) => Ok(path.into()),
            _ => Err(format!("usage: quickstart [--db PATH] (got `{arg}`)").into()),
        };
    }
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or("cannot find the target directory")?;
    let path = target.join("audit-quickstart.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(path)
}

fn line(r: &Record) -> String {
    let actor = r.context.actor.as_ref().map_or("-", |a| a.id.as_str());
    let tenant = r.context.tenant.as_deref().unwrap_or("-");
    let outcome = match r.outcome {
        OutcomeKind::Success => "ok",
        OutcomeKind::Failure => "FAILED",
    };
    format!(
        "  {}  {:<17} {:<4} {:<7} {:<6} {}",
        &r.time.to_string()[11..23],
        r.event,
        actor,
        tenant,
        outcome,
        r.description
    )
}

fn main() -> Result<(), Box<dyn Error>> {
    let db = store_path()?;
    println!("audit store: {}\n", db.display());

    // 1. Install the pipeline with the SQLite store. Primary: `sync` events wait for it.
    let guard = Auditor::builder()
        .sink_with(Sqlite::open(&db)?, SinkOptions::new().primary())
        .spool_dir(db.with_extension("spool"))
        .install()?;

    // 2. Run annotated handlers: two users, two tenants, a failure, an entity update.
    mnoe_app::scenario();

    // 3. Everything queued reaches the store.
    audit::flush();
    let delivered = guard.auditor().metrics().sinks[0].delivered;

    // 4. Read it back: another handle on the same file.
    let mut store = Sqlite::open(&db)?;
    let all = store.query(&Query::all().limit(50))?;
    println!("the trail, newest first ({delivered} records delivered):");
    for r in &all.records {
        println!("{}", line(r));
    }

    let acme = store.query(&Query::for_tenant("acme"))?;
    println!(
        "\ntenant acme sees {} records, none of globex's:",
        acme.records.len()
    );
    for r in acme.records.iter().take(3) {
        println!("{}", line(r));
    }

    let failures = store.query(&Query::all().outcome(OutcomeKind::Failure))?;
    println!("\nfailures:");
    for r in &failures.records {
        println!("{}  error: {}", line(r), r.error.as_deref().unwrap_or("-"));
    }

    let updates = store.query(&Query::all().events(["user_update"]))?;
    if let Some(changes) = updates.records.first().and_then(|r| r.changes.as_ref()) {
        println!("\nuser entity, what changed:");
        for (path, pair) in &changes.difference {
            println!("  {path}: {} -> {}", pair[0], pair[1]);
        }
    }

    // 5. Prove the trail untampered.
    let v = store.verify()?;
    match &v.first_break {
        None => println!("\nverify: {} rows, {} chain intact", v.rows, v.algorithm),
        Some(b) => println!("\nverify: BROKEN: {b}"),
    }

    // 6. Which declared events does no code in this binary emit?
    println!("\n{}", audit::registry::coverage());
    println!(
        "next: cargo run -p audit-cli -- query --db {} --tenant acme",
        db.display()
    );
    println!(
        "      cargo run -p audit-cli -- serve --db {} --catalog examples/catalogs/mnoe.toml   # then open http://127.0.0.1:8080/",
        db.display()
    );
    Ok(())
}
