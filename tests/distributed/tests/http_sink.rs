//! The HTTP channel against a real HTTP server (tiny_http on loopback) that accepts,
//! fails, stalls, refuses records and comes back on command.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit::pipeline::Retry;
use audit::sinks::{Http, HttpFormat};
use audit::{Auditor, audited};
use serde_json::{Value, json};

#[audited(event = "widget_create", meta(name = name))]
fn create_widget(name: &str) {}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Stores every record; a batch holding a "poison" record gets 400.
    Accept,
    /// 503 for everything.
    Fail,
    /// Answers nothing for 2 s, then 503.
    Stall,
}

/// The collector: a real HTTP server on loopback.
struct Collector {
    url: String,
    mode: Arc<Mutex<Mode>>,
    records: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start(port: u16) -> Collector {
        let server = tiny_http::Server::http(("127.0.0.1", port)).unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let c = Collector {
            url: format!("http://127.0.0.1:{port}"),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            records: Arc::default(),
            stop: Arc::default(),
        };
        let (mode, records, stop) = (c.mode.clone(), c.records.clone(), c.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let (status, reply) = answer(*mode.lock().unwrap(), &request, &body, &records);
                let _ = request
                    .respond(tiny_http::Response::from_string(reply).with_status_code(status));
            }
        });
        c
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn names(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(
    mode: Mode,
    request: &tiny_http::Request,
    body: &str,
    records: &Mutex<Vec<Value>>,
) -> (u16, String) {
    match mode {
        Mode::Fail => return (503, "down for maintenance".into()),
        Mode::Stall => {
            std::thread::sleep(Duration::from_secs(2));
            return (503, "stalled".into());
        }
        Mode::Accept => {}
    }
    if *request.method() != tiny_http::Method::Post {
        return (200, "ok".into());
    }
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if request.url() == "/_bulk" {
        // Elasticsearch: action line, then document; a poison document fails alone.
        let mut items = Vec::new();
        for pair in lines.chunks(2) {
            let (action, doc) = (&pair[0], &pair[1]);
            assert_eq!(
                action["index"]["_id"], doc["id"],
                "the record id is the _id"
            );
            if doc.to_string().contains("poison") {
                items.push(json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}));
            } else {
                records.lock().unwrap().push(doc.clone());
                items.push(json!({"index": {"status": 201}}));
            }
        }
        let errors = items.iter().any(|i| i["index"]["status"] != 201);
        return (200, json!({"errors": errors, "items": items}).to_string());
    }
    if body.contains("poison") {
        return (400, "invalid record".into());
    }
    records.lock().unwrap().extend(lines);
    (200, String::new())
}

fn pipeline(sink: Http, spool: &std::path::Path) -> Auditor {
    Auditor::builder()
        .sink(sink)
        .spool_dir(spool)
        .batch_size(20)
        .max_wait(Duration::from_millis(5))
        .retry(Retry {
            attempts: 2,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
            multiplier: 2.0,
            jitter: false,
        })
        .build()
        .unwrap()
}

fn emit(auditor: &Auditor, names: impl IntoIterator<Item = String>) {
    let d: Arc<dyn audit::dispatch::Dispatch> = Arc::new(auditor.clone());
    audit::dispatch::with_dispatch(d, || {
        for n in names {
            create_widget(&n);
        }
    });
}

/// Waits until the collector holds `n` records (or 20 s).
fn wait_for(c: &Collector, n: usize) {
    let start = Instant::now();
    while c.names().len() < n && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_exactly(c: &Collector, expected: &[String]) {
    let got = c.names();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a record arrived twice");
    let want: HashSet<&String> = expected.iter().collect();
    assert_eq!(unique, want);
}

#[test]
fn a_collector_that_fails_then_stalls_then_recovers_gets_everything_once() {
    let c = Collector::start(0);
    let spool = tempfile::tempdir().unwrap();
    let sink = Http::options()
        .timeout(Duration::from_millis(300))
        .build(format!("{}/audit", c.url));
    let auditor = pipeline(sink, spool.path());
    let names: Vec<String> = (0..250).map(|i| format!("w{i}")).collect();
    emit(&auditor, names[..100].iter().cloned());
    wait_for(&c, 100);
    c.set(Mode::Fail);
    emit(&auditor, names[100..200].iter().cloned());
    std::thread::sleep(Duration::from_millis(300));
    c.set(Mode::Stall);
    emit(&auditor, names[200..].iter().cloned());
    std::thread::sleep(Duration::from_millis(500));
    c.set(Mode::Accept);
    wait_for(&c, 250);
    assert!(auditor.flush());
    assert_exactly(&c, &names);
    let m = auditor.metrics().sinks[0].clone();
    assert!(m.spooled > 0 && m.replayed == m.spooled, "{m:?}");
    assert_eq!((m.delivered, m.dead_lettered), (250, 0), "{m:?}");
}

#[test]
fn refused_connections_spool_until_the_collector_starts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spool = tempfile::tempdir().unwrap();
    let auditor = pipeline(
        Http::new(format!("http://127.0.0.1:{port}/audit")),
        spool.path(),
    );
    let names: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
    emit(&auditor, names.clone());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(auditor.metrics().sinks[0].delivered, 0);
    let c = Collector::start(port);
    wait_for(&c, 60);
    assert!(auditor.flush());
    assert_exactly(&c, &names);
}

#[test]
fn a_4xx_refuses_only_the_bad_records() {
    let c = Collector::start(0);
    let spool = tempfile::tempdir().unwrap();
    let auditor = pipeline(Http::new(format!("{}/audit", c.url)), spool.path());
    let names: Vec<String> = (0..40)
        .map(|i| {
            if i % 15 == 7 {
                format!("poison{i}")
            } else {
                format!("ok{i}")
            }
        })
        .collect();
    emit(&auditor, names.clone());
    assert!(auditor.flush());
    let good: Vec<String> = names
        .iter()
        .filter(|n| !n.contains("poison"))
        .cloned()
        .collect();
    assert_exactly(&c, &good);
    let m = auditor.metrics().sinks[0].clone();
    assert_eq!((m.delivered, m.dead_lettered), (37, 3), "{m:?}");
    assert!(
        spool.path().join("http/dead").exists(),
        "refused records are kept"
    );
}

#[test]
fn elasticsearch_bulk_bodies_and_per_item_errors() {
    let c = Collector::start(0);
    let spool = tempfile::tempdir().unwrap();
    let sink = Http::options()
        .format(HttpFormat::ElasticBulk {
            index: "audit".into(),
        })
        .header("Authorization", "ApiKey abc")
        .build(format!("{}/_bulk", c.url));
    let auditor = pipeline(sink, spool.path());
    let names: Vec<String> = (0..10)
        .map(|i| {
            if i == 4 {
                "poison".into()
            } else {
                format!("e{i}")
            }
        })
        .collect();
    emit(&auditor, names.clone());
    assert!(auditor.flush());
    let good: Vec<String> = names.iter().filter(|n| *n != "poison").cloned().collect();
    assert_exactly(&c, &good);
    let m = auditor.metrics().sinks[0].clone();
    assert_eq!((m.delivered, m.dead_lettered), (9, 1), "{m:?}");
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_health_ping_counts_misses() {
    let c = Collector::start(0);
    let sink = Http::options()
        .ping(format!("{}/health", c.url), Duration::from_millis(40))
        .build(format!("{}/audit", c.url));
    let health = sink.health();
    eventually("3 pings", || health.pings() >= 3);
    assert_eq!(health.misses(), 0, "{health:?}");
    c.set(Mode::Fail);
    eventually("3 misses", || health.misses() >= 3);
    c.set(Mode::Accept);
    let (pings, misses) = (health.pings(), health.misses());
    eventually("3 more pings", || health.pings() >= pings + 3);
    assert!(
        health.misses() <= misses + 1,
        "misses stop once the collector is back"
    );
    drop(sink); // stops the ping thread
}
