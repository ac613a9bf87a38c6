//! Caller-side cost of one `#[audited]` call with 4 metadata fields, delivered to a
//! no-op dispatcher, beside the same handler without the attribute.
//!
//! ```sh
//! cargo bench --bench caller
//! ```

use std::hint::black_box;

use audit::dispatch::{Dispatch, Event};
use audit::{Actor, Context, audited};
use criterion::{Criterion, criterion_group, criterion_main};

struct App {
    id: i64,
    uid: String,
    name: String,
    nid: String,
}

/// Takes each event and drops it: measures emission, not delivery.
struct Discard;

impl Dispatch for Discard {
    fn dispatch(&self, event: Event) -> Result<(), audit::DeliveryError> {
        black_box(event);
        Ok(())
    }
}

#[inline(never)]
fn launch_plain(app: &App) -> Result<i64, String> {
    Ok(black_box(app.id))
}

#[audited(event = "app_launch", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid))]
#[inline(never)]
fn launch_audited(app: &App) -> Result<i64, String> {
    Ok(black_box(app.id))
}

fn bench(c: &mut Criterion) {
    audit::dispatch::set_global(Discard).expect("first dispatcher");
    let app = App {
        id: 4,
        uid: "cld-8y7f".into(),
        name: "Inventory Tracker".into(),
        nid: "inv-track".into(),
    };
    let ctx = Context::new()
        .actor(Actor::user("u-1").email("ann@example.com"))
        .tenant("acme");
    audit::scope(ctx, || {
        let mut g = c.benchmark_group("caller");
        g.bench_function("handler without #[audited]", |b| {
            b.iter(|| launch_plain(black_box(&app)))
        });
        g.bench_function("#[audited], 4 fields, no-op dispatch", |b| {
            b.iter(|| launch_audited(black_box(&app)))
        });
        g.finish();
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
