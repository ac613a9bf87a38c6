//! The example service over real HTTP on loopback, with the real SQLite store: each
//! request's record carries its context, its status and its outcome; concurrent
//! requests never mix contexts; a request the client gives up on is recorded as
//! cancelled.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use audit::store::{Query, Sqlite, Store};
use audit::{Auditor, OutcomeKind, Record};

struct Service {
    addr: SocketAddr,
    db: std::path::PathBuf,
}

/// One server and one auditor for the whole file (the auditor is process-wide);
/// each test works in its own tenant.
fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let db = dir.join("trail.db");
        let guard = Auditor::builder()
            .sink(Sqlite::open(&db).unwrap())
            .spool_dir(dir.join("spool"))
            .max_wait(Duration::from_millis(5))
            .install()
            .unwrap();
        std::mem::forget(guard);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum_service_example::app(Default::default());
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .unwrap();
            });
        });
        Service {
            addr: rx.recv().unwrap(),
            db,
        }
    })
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Sends a request; returns (status, x-request-id, body).
fn send(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    let url = format!("http://{}{path}", service().addr);
    let agent = agent(Duration::from_secs(10));
    let mut req = match method {
        "POST" => agent.post(&url),
        "DELETE" => agent.delete(&url).force_send_body(),
        _ => agent.get(&url).force_send_body(),
    }
    .header("user-agent", "service-test/1.0")
    .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body.unwrap_or("")).unwrap();
    let id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.body_mut().read_to_string().unwrap();
    (resp.status().as_u16(), id, text)
}

/// The tenant's records once `n` of them are stored (the pipeline is asynchronous).
fn records_of(tenant: &str, n: usize) -> Vec<Record> {
    service();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        audit::flush();
        let mut store = Sqlite::open(&service().db).unwrap();
        let page = store
            .query(
                &Query::for_tenant(tenant)
                    .order(audit::store::Order::OldestFirst)
                    .limit(500),
            )
            .unwrap();
        if page.records.len() >= n || Instant::now() > deadline {
            return page.records;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_record_carries_its_request_status_and_outcome() {
    let (status, id, body) = send(
        "POST",
        "/projects",
        Some("ann:acme:admin"),
        Some(r#"{"name":"Website"}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        uuid_version(&id),
        Some(7),
        "a new request id is made and echoed"
    );
    let project: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pid = project["id"].as_u64().unwrap();
    let (status, _, _) = send(
        "POST",
        "/projects",
        Some("bob:acme"),
        Some(r#"{"name":"Secret"}"#),
    );
    assert_eq!(status, 403);
    let (status, _, _) = send(
        "POST",
        &format!("/projects/{pid}/members"),
        Some("ann:acme:admin"),
        Some(r#"{"email":"kim@acme.test","role":"editor"}"#),
    );
    assert_eq!(status, 200);
    let (status, _, _) = send(
        "DELETE",
        &format!("/projects/{pid}"),
        Some("ann:acme:admin"),
        None,
    );
    assert_eq!(status, 204);
    let (status, _, _) = send(
        "DELETE",
        &format!("/projects/{pid}"),
        Some("ann:acme:admin"),
        None,
    );
    assert_eq!(status, 404);

    let rs = records_of("acme", 5);
    assert_eq!(rs.len(), 5, "{rs:#?}");
    let created = &rs[0];
    let req = created.context.request.as_ref().unwrap();
    assert_eq!(req.id.as_deref(), Some(id.as_str()));
    assert_eq!(req.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(req.user_agent.as_deref(), Some("service-test/1.0"));
    assert_eq!(req.method.as_deref(), Some("POST"));
    assert_eq!(req.route.as_deref(), Some("/projects"));
    assert_eq!(req.status, Some(201));
    assert_eq!(created.outcome, OutcomeKind::Success);
    assert_eq!(created.description, "Project 'Website' created");
    assert_eq!(created.context.actor.as_ref().unwrap().id, "ann");

    let refused = &rs[1];
    assert_eq!(refused.outcome, OutcomeKind::Failure);
    assert_eq!(refused.error.as_deref(), Some("HTTP 403 Forbidden"));
    assert_eq!(
        refused.description,
        "Could not create project 'Secret': HTTP 403 Forbidden"
    );
    assert_eq!(refused.context.request.as_ref().unwrap().status, Some(403));
    assert_eq!(refused.context.actor.as_ref().unwrap().id, "bob");

    let member = &rs[2];
    assert_eq!(
        member.context.request.as_ref().unwrap().route.as_deref(),
        Some("/projects/{id}/members")
    );
    assert_eq!(
        member.context.request.as_ref().unwrap().status,
        Some(200),
        "a Json body is 200"
    );
    let (deleted, missing) = (&rs[3], &rs[4]);
    assert_eq!(deleted.context.request.as_ref().unwrap().status, Some(204));
    assert_eq!(missing.outcome, OutcomeKind::Failure);
    assert_eq!(missing.error.as_deref(), Some("no such project"));
    assert_eq!(
        missing.context.request.as_ref().unwrap().status,
        Some(404),
        "from the error type"
    );
    // Everything that happened to the project, in one query: its references.
    let mut store = Sqlite::open(&service().db).unwrap();
    let about = store
        .query(
            &Query::for_tenant("acme")
                .entity("project", Some(pid.to_string()))
                .limit(100),
        )
        .unwrap();
    assert_eq!(
        about.records.len(),
        3,
        "member added, deleted, delete refused"
    );
    // The catalog marks `project_id` indexed: the store indexed it on open.
    assert!(audit::registry::indexed_fields().contains("project_id"));
    let by_field = store
        .query(
            &Query::for_tenant("acme")
                .field("project_id", pid)
                .limit(100),
        )
        .unwrap();
    assert_eq!(by_field.records.len(), 3);
    let wal = service().db.with_extension("db-wal");
    let made = [&service().db, &wal]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| {
            bytes
                .windows(b"audit_field_project_id".len())
                .any(|w| w == b"audit_field_project_id")
        });
    assert!(made, "the index is in the schema");
}

#[test]
fn a_client_request_id_is_kept_and_login_names_its_actor() {
    let url = format!("http://{}/login", service().addr);
    let mut resp = agent(Duration::from_secs(10))
        .post(&url)
        .header("x-request-id", "req-from-gateway-1")
        .header("content-type", "application/json")
        .send(r#"{"email":"zoe@initech.test","password":"hunter2"}"#)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers().get("x-request-id").unwrap(),
        "req-from-gateway-1"
    );
    let _ = resp.body_mut().read_to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        audit::flush();
        let mut store = Sqlite::open(&service().db).unwrap();
        let page = store
            .query(&Query::all().events(["user_login"]).limit(50))
            .unwrap();
        if let Some(r) = page.records.into_iter().find(|r| {
            r.context.request.as_ref().and_then(|q| q.id.as_deref()) == Some("req-from-gateway-1")
        }) {
            break r;
        }
        assert!(Instant::now() < deadline, "the login record never arrived");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        record.context.actor.as_ref().unwrap().id,
        "zoe@initech.test"
    );
    assert_eq!(record.outcome, OutcomeKind::Failure);
    assert_eq!(
        record.description,
        "Sign-in refused for zoe@initech.test: wrong password"
    );
    assert_eq!(record.metadata["password"], "[REDACTED]");
    assert_eq!(record.context.request.as_ref().unwrap().status, Some(401));
}

#[test]
fn concurrent_requests_never_mix_contexts() {
    let threads: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..5 {
                    let token = format!("user{t}:globex:admin");
                    let (status, id, _) = send(
                        "POST",
                        "/projects",
                        Some(&token),
                        Some(&format!(r#"{{"name":"p-{t}-{i}"}}"#)),
                    );
                    assert_eq!(status, 201);
                    ids_seen()
                        .lock()
                        .unwrap()
                        .push((id, format!("user{t}"), format!("p-{t}-{i}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rs = records_of("globex", 80);
    assert_eq!(rs.len(), 80);
    let seen = ids_seen().lock().unwrap().clone();
    for r in &rs {
        let id = r.context.request.as_ref().unwrap().id.clone().unwrap();
        let (_, user, name) = seen
            .iter()
            .find(|(i, _, _)| *i == id)
            .expect("a known request");
        assert_eq!(&r.context.actor.as_ref().unwrap().id, user, "{r:#?}");
        assert_eq!(r.metadata["name"], name.as_str());
    }
}

fn ids_seen() -> &'static std::sync::Mutex<Vec<(String, String, String)>> {
    static SEEN: OnceLock<std::sync::Mutex<Vec<(String, String, String)>>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

#[test]
fn a_request_the_client_gives_up_on_is_recorded_as_cancelled() {
    let url = format!("http://{}/slow/42", service().addr);
    let started = Instant::now();
    let result = agent(Duration::from_millis(300))
        .get(&url)
        .header("authorization", "Bearer ivy:umbrella:admin")
        .call();
    assert!(result.is_err(), "the client timed out");
    let rs = records_of("umbrella", 1);
    assert_eq!(
        rs.len(),
        1,
        "recorded long before the handler's 5 s were up"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    let r = &rs[0];
    assert_eq!(r.outcome, OutcomeKind::Failure);
    assert!(
        r.error.as_deref().unwrap().starts_with("cancelled"),
        "{:?}",
        r.error
    );
    assert_eq!(
        r.entity.as_ref().unwrap().id,
        Some(serde_json::json!(42)),
        "named at entry"
    );
    assert_eq!(
        r.context.request.as_ref().unwrap().route.as_deref(),
        Some("/slow/{id}")
    );
}

fn uuid_version(s: &str) -> Option<usize> {
    audit::Uuid::parse_str(s).ok().map(|u| u.get_version_num())
}
