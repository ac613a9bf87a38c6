//! The API over HTTP on loopback against a real SQLite store: filters, keyset pages,
//! records by id, verification, and tokens — a tenant token never sees another
//! tenant's record, whatever id, filter or cursor it sends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use audit_runtime::integrity::Chain;
use audit_runtime::sinks::{Item, Sink};
use audit_runtime::store::Sqlite;
use audit_runtime::{Record, Timestamp};
use audit_viewer::{Access, Viewer};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";
const ACME: &str = "acme-token-0123456789ab";

/// Record `i`: tenants alternate acme / globex, actors u-0..u-2.
fn record(i: usize) -> Record {
    let tenant = if i.is_multiple_of(2) {
        "acme"
    } else {
        "globex"
    };
    serde_json::from_value(json!({
        "id": audit_runtime::Uuid::now_v7(),
        "time": Timestamp::from_nanos(1_780_000_000_000_000_000 + i as i64 * 1_000_000),
        "event": if i.is_multiple_of(3) { "user_login" } else { "app_launch" },
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

struct Server {
    addr: SocketAddr,
    records: Vec<Record>,
    _dir: tempfile::TempDir,
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

fn serve(access: Access) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = Sqlite::open(&path).unwrap();
    let mut chain = Chain::new();
    let mut records = Vec::new();
    let items: Vec<Item> = (0..30)
        .map(|i| {
            let mut r = record(i);
            let json = chain.link(&mut r);
            records.push(r.clone());
            Item::with_json(r, json, Arc::from("x"))
        })
        .collect();
    store.write(&items).unwrap();
    drop(store);
    let viewer = Viewer::new(move || Ok(Box::new(Sqlite::open(&path)?) as _), access);
    Server {
        addr: listen(viewer),
        records,
        _dir: dir,
    }
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
    let s = serve(Access::open());
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
    let s = serve(tokens());
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
    let s = serve(tokens());
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
    let s = Server {
        addr: listen(viewer),
        records: Vec::new(),
        _dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(get(&s, "/api/records", None).0, 500);
    let (status, page) = get(&s, "/api/records", None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
