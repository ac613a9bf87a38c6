//! Entity diff (issue 5): the derive's field-by-field diff of a 20-field struct with
//! 3 changed fields, beside `serde_json::to_value` of both sides plus a key-by-key
//! comparison, and beside `json_patch::diff`; and the unchanged case.
//!
//! ```sh
//! cargo bench --bench diff
//! ```

use std::hint::black_box;

use audit::{AuditDiff, AuditEntity};
use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;

#[derive(Clone, Serialize, AuditEntity)]
struct Wide {
    f01: u64,
    f02: String,
    f03: bool,
    f04: Option<String>,
    f05: Vec<String>,
    f06: f64,
    f07: u64,
    f08: String,
    f09: bool,
    f10: Option<String>,
    f11: Vec<String>,
    f12: f64,
    f13: u64,
    f14: String,
    f15: bool,
    f16: Option<String>,
    f17: Vec<String>,
    f18: f64,
    f19: u64,
    f20: String,
}

fn wide() -> Wide {
    let s = |x: &str| x.to_owned();
    Wide {
        f01: 1,
        f02: s("Acme Corporation"),
        f03: true,
        f04: Some(s("lead@acme.example")),
        f05: vec![s("vip"), s("emea")],
        f06: 12.5,
        f07: 7,
        f08: s("Lyon"),
        f09: false,
        f10: None,
        f11: vec![s("a")],
        f12: 0.25,
        f13: 99,
        f14: s("open"),
        f15: true,
        f16: Some(s("note")),
        f17: vec![],
        f18: 3.0,
        f19: 1_000,
        f20: s("2026-11-23"),
    }
}

/// The Value approach: serialize both sides, compare key by key.
fn value_diff(a: &Wide, b: &Wide) -> serde_json::Map<String, serde_json::Value> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    ) else {
        unreachable!()
    };
    let mut out = serde_json::Map::new();
    for (k, va) in &a {
        let vb = &b[k];
        if va != vb {
            out.insert(
                k.clone(),
                serde_json::Value::Array(vec![va.clone(), vb.clone()]),
            );
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let before = wide();
    let mut after = wide();
    after.f02 = "Acme Inc".into();
    after.f06 = 13.0;
    after.f11.push("b".into());

    let mut check = serde_json::Map::new();
    before.audit_diff(&after, "", &mut check);
    assert_eq!(
        check,
        value_diff(&before, &after),
        "both report the same difference"
    );
    assert_eq!(check.len(), 3);

    let mut g = c.benchmark_group("diff 20 fields, 3 changed");
    g.bench_function("derive (field by field)", |b| {
        b.iter(|| {
            let mut out = serde_json::Map::new();
            black_box(&before).audit_diff(black_box(&after), "", &mut out);
            out
        })
    });
    g.bench_function("serde_json::to_value + key by key", |b| {
        b.iter(|| value_diff(black_box(&before), black_box(&after)))
    });
    g.bench_function("json_patch::diff", |b| {
        b.iter(|| {
            let (x, y) = (
                serde_json::to_value(black_box(&before)).unwrap(),
                serde_json::to_value(black_box(&after)).unwrap(),
            );
            json_patch::diff(&x, &y)
        })
    });
    g.finish();

    let same = wide();
    c.bench_function("derive diff, unchanged entity", |b| {
        b.iter(|| {
            let mut out = serde_json::Map::new();
            black_box(&before).audit_diff(black_box(&same), "", &mut out);
            out
        })
    });
}

/// The entity of an update event: an id and the 20 fields, nested (paths `inner.f02`).
#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct Account {
    #[audit(id)]
    id: u64,
    inner: Wide,
}

#[audit::audited(event = "user_update", entity = account, meta(user_email = "x@example.com"))]
fn update(account: &mut Account) {
    account.inner.f02 = "Acme Inc".into();
}

/// Building the record of an update event on the pipeline's builder thread: the
/// snapshots and difference of a 20-field entity, redaction of every key included.
fn record_with_changes(c: &mut Criterion) {
    use audit::dispatch::{Event, Outcome, Value};
    let site = audit::registry::sites()
        .into_iter()
        .find(|s| s.function == "update")
        .expect("the bench's site");
    let before = Account {
        id: 7,
        inner: wide(),
    };
    let mut after = before.clone();
    update(&mut after);
    after.inner.f06 = 13.0;
    after.inner.f11.push("b".into());
    let event = || {
        Event::new(
            site,
            Outcome::Success,
            0,
            vec![Value::Str("x@example.com".into())],
            None,
        )
        .with_entity(Some(Box::new(after.audit_updated_from(&before))))
    };
    let record = audit::Record::from_event_owned(event());
    assert_eq!(record.changes.as_ref().unwrap().difference.len(), 3);
    c.bench_function("record of an update event (20-field entity)", |b| {
        b.iter_batched(
            event,
            audit::Record::from_event_owned,
            criterion::BatchSize::SmallInput,
        )
    });
}

#[audit::audited(event = "users_deactivate", each = accounts, meta(reason = "bench"))]
fn update_each(accounts: &mut [Account]) {
    for a in accounts.iter_mut() {
        a.inner.f02 = "Acme Inc".into();
    }
}

/// Drops every event: the caller's side of an emission, no delivery.
struct Discard;

impl audit::dispatch::Dispatch for Discard {
    fn dispatch(&self, event: audit::dispatch::Event) -> Result<(), audit::DeliveryError> {
        drop(black_box(event));
        Ok(())
    }
}

/// Issue 18: the caller's cost per entity of one bulk call (`each = accounts`,
/// entities paired by id) beside one `entity = account` call per entity, 1 000
/// 20-field entities, events discarded.
fn bulk_per_entity(c: &mut Criterion) {
    const N: usize = 1000;
    let accounts: Vec<Account> = (0..N as u64)
        .map(|id| Account { id, inner: wide() })
        .collect();
    let discard: std::sync::Arc<dyn audit::dispatch::Dispatch> = std::sync::Arc::new(Discard);
    let mut g = c.benchmark_group("1 000 entities updated");
    g.throughput(criterion::Throughput::Elements(N as u64));
    g.bench_function("one call per entity (entity = a)", |b| {
        b.iter_batched_ref(
            || accounts.clone(),
            |accounts| {
                audit::dispatch::with_dispatch(discard.clone(), || {
                    for a in accounts.iter_mut() {
                        update(a);
                    }
                })
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("one bulk call (each = accounts)", |b| {
        b.iter_batched_ref(
            || accounts.clone(),
            |accounts| audit::dispatch::with_dispatch(discard.clone(), || update_each(accounts)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench, record_with_changes, bulk_per_entity);
criterion_main!(benches);
