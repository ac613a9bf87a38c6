//! The API over HTTP on loopback against real stores — SQLite and PostgreSQL, every
//! test on both: filters, keyset pages, records by id, verification, the catalog,
//! the live tail, exports, and tokens — a tenant token never sees another tenant's
//! record, whatever id, filter, cursor or position it sends.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_runtime::integrity::Chain;
use audit_runtime::sinks::{Item, Sink};
use audit_runtime::store::{Postgres, Sqlite, Store};
use audit_runtime::{Record, Timestamp};
use audit_viewer::{Access, Viewer};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";
const ACME: &str = "acme-token-0123456789ab";

/// Record `i`: tenants alternate acme / globex, actors u-0..u-2; the last of the
/// first 30 is globex's only `invoice_void`.
fn record(i: usize) -> Record {
    let tenant = if i.is_multiple_of(2) {
        "acme"
    } else {
        "globex"
    };
    let event = match i {
        29 => "invoice_void",
        _ if i.is_multiple_of(3) => "user_login",
        _ => "app_launch",
    };
    serde_json::from_value(json!({
        "id": audit_runtime::Uuid::now_v7(),
        "time": Timestamp::from_nanos(1_780_000_000_000_000_000 + i as i64 * 1_000_000),
        "event": event,
        "code": 3, "category": "app", "level": "info",
        "outcome": if i.is_multiple_of(5) { "failure" } else { "success" },
        "error": if i.is_multiple_of(5) { json!("boom") } else { json!(null) },
        "duration_ns": 10, "description": format!("record {i}"),
        "actor": {"id": format!("u-{}", i % 3), "email": null, "name": null, "kind": "user"},
        "impersonator": null, "tenant": tenant, "environment": null, "source": null,
        "request": null, "entity": {"type": "app", "type_code": 1, "id": i},
        "changes": null, "metadata": {"n": i},
        "site": {"module": "m", "file": "f.rs", "line": 1, "function": "f"},
        "prev_hash": null, "hash": null
    }))
    .unwrap()
}

/// The stores every test runs against.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

fn pg_url() -> String {
    std::env::var("AUDIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Where a test's store lives: a temporary directory, or a PostgreSQL schema of
/// its own, dropped at the end.
enum Place {
    // Held for its Drop: the directory goes with the test.
    File(#[allow(dead_code)] tempfile::TempDir),
    Schema(String),
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Schema(s) = self
            && let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
        }
    }
}

type Opener = Arc<dyn Fn() -> Box<dyn StoreSink> + Send + Sync>;

/// A store that is also a sink (both stores are).
trait StoreSink: Store + Sink + Send {}
impl<T: Store + Sink + Send> StoreSink for T {}

/// A fresh, empty store of `backend` and how to open it again.
fn place(backend: Backend) -> (Place, Opener) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.db");
            let open: Opener = Arc::new(move || Box::new(Sqlite::open(&path).unwrap()));
            (Place::File(dir), open)
        }
        Backend::Postgres => {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let schema = format!("audit_viewer_{}_{n}", std::process::id());
            let s = schema.clone();
            let open: Opener = Arc::new(move || {
                Box::new(
                    Postgres::options()
                        .schema(&s)
                        .connect(&pg_url())
                        .unwrap_or_else(|e| {
                            panic!(
                                "PostgreSQL at {} is unreachable ({e}); start it (see .ci/run)",
                                pg_url()
                            )
                        }),
                )
            });
            (Place::Schema(schema), open)
        }
    }
}

struct Server {
    addr: SocketAddr,
    records: Vec<Record>,
    open: Opener,
    _place: Place,
}

/// Serves `viewer` on a loopback port of its own.
fn listen(viewer: Viewer) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, viewer.router()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Writes records `range` into the store, chained as one producer.
fn write(open: &Opener, range: std::ops::Range<usize>) -> Vec<Record> {
    let mut store = open();
    let mut chain = Chain::new();
    let mut records = Vec::new();
    let items: Vec<Item> = range
        .map(|i| {
            let mut r = record(i);
            let json = chain.link(&mut r);
            records.push(r.clone());
            Item::with_json(r, json, Arc::from("x"))
        })
        .collect();
    store.write(&items).unwrap();
    records
}

/// A viewer over 30 records in a fresh store of `backend`, configured by `setup`.
fn serve_with(backend: Backend, access: Access, setup: impl FnOnce(Viewer) -> Viewer) -> Server {
    let (place, open) = place(backend);
    let records = write(&open, 0..30);
    let factory = Arc::clone(&open);
    let viewer = Viewer::new(move || Ok(factory() as Box<dyn Store + Send>), access);
    Server {
        addr: listen(setup(viewer)),
        records,
        open,
        _place: place,
    }
}

fn serve(backend: Backend, access: Access) -> Server {
    serve_with(backend, access, |v| v)
}

/// `GET path` with an optional token: (status, JSON body).
fn get(s: &Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, _, body) = get_text(s, path, token);
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn ids(v: &Value) -> Vec<String> {
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn tokens() -> Access {
    Access::parse(&format!("{ADMIN} admin\n{ACME} tenant:acme\n")).unwrap()
}

#[test]
fn filters_and_keyset_pages() {
    for backend in BACKENDS {
        filters_and_keyset_pages_on(backend);
    }
}

fn filters_and_keyset_pages_on(backend: Backend) {
    let s = serve(backend, Access::open());
    let (status, page) = get(&s, "/api/records?actor=u-1&order=oldest&limit=4", None);
    assert_eq!(status, 200, "{page}");
    let want: Vec<String> = s
        .records
        .iter()
        .filter(|r| r.context.actor.as_ref().unwrap().id == "u-1")
        .map(|r| r.id.to_string())
        .collect();
    let mut got = ids(&page);
    let mut next = page["next"].as_str().map(str::to_owned);
    while let Some(c) = next {
        let (_, p) = get(
            &s,
            &format!("/api/records?actor=u-1&order=oldest&limit=4&cursor={c}"),
            None,
        );
        got.extend(ids(&p));
        next = p["next"].as_str().map(str::to_owned);
    }
    assert_eq!(got, want);
    let (_, failures) = get(
        &s,
        "/api/records?outcome=failure&event=user_login&event=app_launch",
        None,
    );
    assert_eq!(ids(&failures).len(), 6);
    let (_, by_field) = get(&s, "/api/records?field=n%3D7", None);
    assert_eq!(ids(&by_field), [s.records[7].id.to_string()]);
    let (status, err) = get(&s, "/api/records?operation=not-an-id", None);
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("operation"));
    let (_, none) = get(
        &s,
        &format!("/api/records?operation={}", s.records[0].id),
        None,
    );
    assert!(ids(&none).is_empty(), "no record belongs to that operation");
    let (status, err) = get(&s, "/api/records?since=someday", None);
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("RFC 3339"));
    let (status, _) = get(&s, "/api/records?cursor=forged", None);
    assert_eq!(status, 400);
    let (status, one) = get(&s, &format!("/api/records/{}", s.records[3].id), None);
    assert_eq!(
        (status, one["description"].as_str()),
        (200, Some("record 3"))
    );
    let (status, _) = get(
        &s,
        &format!("/api/records/{}", audit_runtime::Uuid::now_v7()),
        None,
    );
    assert_eq!(status, 404);
    let (status, v) = get(&s, "/api/verify", None);
    assert_eq!(
        (status, v["intact"].as_bool(), v["rows"].as_u64()),
        (200, Some(true), Some(30))
    );
    let (status, _) = get(&s, "/api/nothing", None);
    assert_eq!(status, 404);
}

#[test]
fn a_tenant_token_never_sees_another_tenants_record() {
    for backend in BACKENDS {
        a_tenant_token_never_sees_another_tenants_record_on(backend);
    }
}

fn a_tenant_token_never_sees_another_tenants_record_on(backend: Backend) {
    let s = serve(backend, tokens());
    let acme: Vec<String> = s
        .records
        .iter()
        .filter(|r| r.context.tenant.as_deref() == Some("acme"))
        .map(|r| r.id.to_string())
        .collect();
    let globex = s
        .records
        .iter()
        .find(|r| r.context.tenant.as_deref() == Some("globex"))
        .unwrap();
    // No token, a wrong one.
    assert_eq!(get(&s, "/api/records", None).0, 401);
    assert_eq!(
        get(&s, "/api/records", Some("acme-token-0123456789ac")).0,
        401
    );
    // Everything acme sees is acme's, and all of it.
    let (status, page) = get(&s, "/api/records?limit=100&order=oldest", Some(ACME));
    assert_eq!(status, 200);
    assert_eq!(ids(&page), acme);
    // Another tenant asked for outright, by id, by filter: refused or not found.
    assert_eq!(get(&s, "/api/records?tenant=globex", Some(ACME)).0, 403);
    assert_eq!(
        get(&s, &format!("/api/records/{}", globex.id), Some(ACME)).0,
        404
    );
    let (_, by_text) = get(&s, "/api/records?q=record%201&limit=100", Some(ACME));
    assert!(ids(&by_text).iter().all(|id| acme.contains(id)));
    // An admin's cursor, taken in the middle of globex's rows, stays acme's.
    let (_, admin_page) = get(&s, "/api/records?tenant=globex&limit=3", Some(ADMIN));
    let cursor = admin_page["next"].as_str().unwrap();
    let (status, after) = get(
        &s,
        &format!("/api/records?cursor={cursor}&limit=100"),
        Some(ACME),
    );
    assert_eq!(status, 200);
    assert!(!ids(&after).is_empty());
    assert!(ids(&after).iter().all(|id| acme.contains(id)));
    // Verification covers every tenant: admins only.
    assert_eq!(get(&s, "/api/verify", Some(ACME)).0, 403);
    assert_eq!(get(&s, "/api/verify", Some(ADMIN)).0, 200);
    assert_eq!(
        get(&s, &format!("/api/records/{}", globex.id), Some(ADMIN)).0,
        200
    );
}

/// `GET` the raw body.
fn get_text(s: &Server, path: &str, token: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = agent.get(&format!("http://{}{path}", s.addr));
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        resp.status().as_u16(),
        ct,
        resp.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn export_streams_every_matching_record() {
    for backend in BACKENDS {
        export_streams_every_matching_record_on(backend);
    }
}

fn export_streams_every_matching_record_on(backend: Backend) {
    let s = serve(backend, tokens());
    // JSON Lines: every acme record (more than one internal page is not needed for
    // correctness; the walk is the query's), each line still matching its hash.
    // Pages of 4: the walk goes through four of them.
    let (status, ct, body) = get_text(
        &s,
        "/api/export?format=jsonl&order=oldest&limit=4",
        Some(ACME),
    );
    assert_eq!((status, ct.as_str()), (200, "application/x-ndjson"));
    let lines: Vec<&str> = body.lines().collect();
    let acme: Vec<String> = s
        .records
        .iter()
        .filter(|r| r.context.tenant.as_deref() == Some("acme"))
        .map(|r| r.id.to_string())
        .collect();
    let got: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(got, acme);
    for l in &lines {
        let (stored, computed) = audit_runtime::integrity::hash_of_json(l).unwrap();
        assert_eq!(
            stored,
            Some(computed.as_str()),
            "exported exactly as hashed"
        );
    }
    // CSV of a filter, for an admin.
    let (status, ct, csv) = get_text(&s, "/api/export?format=csv&actor=u-2", Some(ADMIN));
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"));
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("time,id,event"));
    assert_eq!(
        rows.len() - 1,
        s.records
            .iter()
            .filter(|r| r.context.actor.as_ref().unwrap().id == "u-2")
            .count()
    );
    // Another tenant's export is refused; a bad format is named.
    assert_eq!(get_text(&s, "/api/export?tenant=globex", Some(ACME)).0, 403);
    let (status, _, err) = get_text(&s, "/api/export?format=xml", Some(ADMIN));
    assert_eq!(status, 400);
    assert!(err.contains("jsonl"));
}

/// The application's store factory panicking costs that request a 500, not the
/// server: the next request is answered.
#[test]
fn a_panicking_store_factory_answers_500_and_the_server_goes_on() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    drop(Sqlite::open(&path).unwrap());
    let viewer = Viewer::new(
        move || {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("the secret store is down");
            }
            Ok(Box::new(Sqlite::open(&path)?) as _)
        },
        Access::open(),
    );
    let (place, open) = place(Backend::Sqlite);
    let s = Server {
        addr: listen(viewer),
        records: Vec::new(),
        open,
        _place: place,
    };
    assert_eq!(get(&s, "/api/records", None).0, 500);
    let (status, page) = get(&s, "/api/records", None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// The catalog lists the declared events and those the store holds; a tenant sees
/// every declared event but only its own records' times, and no event that only
/// another tenant's records hold.
#[test]
fn the_catalog_serves_declared_and_recorded_events() {
    for backend in BACKENDS {
        the_catalog_serves_declared_and_recorded_events_on(backend);
    }
}

fn the_catalog_serves_declared_and_recorded_events_on(backend: Backend) {
    let catalog = audit_catalog::Catalog::parse(
        "audit.toml",
        r#"
        [catalog]
        name = "apps"
        [events.app_launch]
        code = 3
        category = "app"
        description = "launched %{app}"
        fields = { app = "string" }
        [events.app_delete]
        code = 4
        category = "app"
        level = "warn"
        "#,
    )
    .unwrap();
    let s = serve_with(backend, tokens(), |v| v.catalogs(vec![catalog]));
    let names = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, all) = get(&s, "/api/catalog", Some(ADMIN));
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        names(&all),
        ["app_delete", "app_launch", "invoice_void", "user_login"]
    );
    let launch = &all["events"][1];
    assert_eq!(launch["declared"], true);
    assert_eq!(launch["description"], "launched %{app}");
    assert_eq!(launch["fields"][0]["name"], "app");
    let newest_launch = |tenant: &str| {
        s.records
            .iter()
            .filter(|r| r.event == "app_launch" && r.context.tenant.as_deref() == Some(tenant))
            .map(|r| r.time)
            .max()
            .unwrap()
    };
    assert_eq!(
        launch["last_seen"],
        json!(newest_launch("acme").max(newest_launch("globex")))
    );
    assert_eq!(all["events"][0]["last_seen"], Value::Null);
    assert_eq!(all["events"][2]["declared"], false);
    let (status, acme) = get(&s, "/api/catalog", Some(ACME));
    assert_eq!(status, 200);
    assert_eq!(names(&acme), ["app_delete", "app_launch", "user_login"]);
    assert_eq!(acme["events"][1]["last_seen"], json!(newest_launch("acme")));
    assert_eq!(get(&s, "/api/catalog", None).0, 401);
}

/// Reads Server-Sent Events from `path` until `n` records came or 20 s passed:
/// (position, record) of each.
fn tail(s: &Server, path: &str, token: &str, last_id: Option<i64>, n: usize) -> Vec<(i64, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut req = agent
        .get(&format!("http://{}{path}", s.addr))
        .header("authorization", &format!("Bearer {token}"));
    if let Some(id) = last_id {
        req = req.header("last-event-id", &id.to_string());
    }
    let resp = req.call().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut lines = std::io::BufReader::new(resp.into_body().into_reader()).lines();
    let (mut out, mut id, mut kind) = (Vec::new(), None, String::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse::<i64>().unwrap());
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_owned();
        } else if let Some(v) = line.strip_prefix("data: ") {
            assert_eq!(kind, "record", "{v}");
            out.push((id.take().unwrap(), serde_json::from_str(v).unwrap()));
        }
    }
    out
}

/// The tail streams new records matching its filters, of the caller's tenant only,
/// and resumes from `Last-Event-ID` without a gap or a repeat.
#[test]
fn the_tail_streams_new_matching_records_of_the_callers_tenant() {
    for backend in BACKENDS {
        the_tail_streams_new_matching_records_on(backend);
    }
}

fn the_tail_streams_new_matching_records_on(backend: Backend) {
    let s = serve_with(backend, tokens(), |v| {
        v.tail_interval(Duration::from_millis(50))
    });
    let open = Arc::clone(&s.open);
    // Records 30..90 are written while the tail listens.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let mut all = Vec::new();
        for start in (30..90).step_by(20) {
            all.extend(write(&open, start..start + 20));
            std::thread::sleep(Duration::from_millis(100));
        }
        all
    });
    let want_of = |all: &[Record]| -> Vec<String> {
        all.iter()
            .filter(|r| r.context.tenant.as_deref() == Some("acme") && r.event == "user_login")
            .map(|r| r.id.to_string())
            .collect()
    };
    let got = tail(&s, "/api/tail?event=user_login", ACME, None, 10);
    let written = writer.join().unwrap();
    let want = want_of(&written);
    assert_eq!(want.len(), 10);
    let ids: Vec<String> = got
        .iter()
        .map(|(_, r)| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, want, "only new acme user_login records, in order");
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    // Resuming after the 4th: the 5th onwards, nothing before, nothing twice.
    let resumed = tail(&s, "/api/tail?event=user_login", ACME, Some(got[3].0), 6);
    let ids: Vec<String> = resumed
        .iter()
        .map(|(_, r)| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, want[4..]);
    // From position 0 with `after`, acme's token still gets acme's records only.
    let from_start = tail(&s, "/api/tail?after=0", ACME, None, 45);
    assert_eq!(from_start.len(), 45);
    assert!(from_start.iter().all(|(_, r)| r["tenant"] == "acme"));
    // Another tenant, a cursor, a bad position: refused.
    assert_eq!(get(&s, "/api/tail?tenant=globex", Some(ACME)).0, 403);
    assert_eq!(get(&s, "/api/tail?cursor=c1-00", Some(ACME)).0, 400);
    assert_eq!(get(&s, "/api/tail?after=-3", Some(ACME)).0, 400);
}
