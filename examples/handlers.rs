//! Annotated handlers on the MnoEnterprise catalog (`examples/catalogs/mnoe.toml`):
//! app, dashboard, user and widget events, as two users of two tenants, one call
//! failing. Events go through the delivery pipeline to the console, a JSON Lines
//! file and an Intercom-style listener that publishes the catalog's aliases; then the
//! coverage report lists the declared events this program never emits.
//!
//! ```sh
//! cargo run --example handlers
//! ```

mod mnoe_app;

use audit::sinks::{Console, JsonLines, Listener, SinkOptions};
use audit::{Auditor, Record};

fn main() {
    let out = std::env::temp_dir().join("audit-handlers-example");
    let _ = std::fs::remove_dir_all(&out);
    let intercom = Listener::new("intercom", |r: &Record, name: &str| {
        println!("  intercom <- {name} ({})", r.description);
    });
    let guard = Auditor::builder()
        .sink(Console::human())
        .sink(JsonLines::open(out.join("audit.jsonl")).expect("log file opens"))
        // The MnoEnterprise Intercom listener: renamed events, app and dashboard ones only.
        .sink_with(
            intercom,
            SinkOptions::new()
                .alias("intercom")
                .categories(["app", "dashboard", "widget", "user"]),
        )
        .spool_dir(out.join("spool"))
        .install()
        .expect("first logger of this process");

    mnoe_app::scenario();

    audit::flush();
    let metrics = guard.auditor().metrics();
    for s in &metrics.sinks {
        eprintln!("sink {:<22} delivered {}", s.name, s.delivered);
    }
    eprintln!(
        "JSON Lines written to {}",
        out.join("audit.jsonl").display()
    );
    eprintln!("\n{}", audit::registry::coverage());
}
