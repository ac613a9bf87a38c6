//! The viewer's page in a real browser: Debian's chromium, driven through
//! chromedriver, against a store written by the quickstart's handlers. Signing in,
//! filtering by actor, paging forward and back, an entity update's before / after,
//! export of the current filter, live mode, and a tenant token that never shows
//! another tenant's row. Screenshots of each view go to
//! `target/tmp/viewer-screenshots/` for a person to look at.
//!
//! chromium and chromedriver must be installed (`.ci/run` installs them): without
//! them this test fails, it never skips.

#[path = "../examples/mnoe_app/mod.rs"]
mod mnoe_app;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use audit::sinks::SinkOptions;
use audit::store::{Query, Sqlite, Store};
use audit::{Auditor, Record};
use audit_viewer::{Access, Viewer};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";
const ACME: &str = "acme-token-0123456789ab";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a port of its own, in a process group of its own so that the
/// browsers it starts go with it.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        for exe in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(exe).exists(),
                "{exe} is missing: install Debian's chromium and chromium-driver \
                 (apt-get install chromium chromium-driver; .ci/run does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }

    async fn browser(&self, profile: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) of the process group chromedriver leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The quickstart's scenario, written by the pipeline into a SQLite store.
fn quickstart_store(db: &Path) -> audit::pipeline::AuditorGuard {
    let guard = Auditor::builder()
        .sink_with(Sqlite::open(db).unwrap(), SinkOptions::new().primary())
        .spool_dir(db.with_extension("spool"))
        .install()
        .unwrap();
    mnoe_app::scenario();
    audit::flush();
    guard
}

fn serve(db: PathBuf) -> SocketAddr {
    let access = Access::parse(&format!("{ADMIN} admin\n{ACME} tenant:acme\n")).unwrap();
    let viewer = Viewer::new(move || Ok(Box::new(Sqlite::open(&db)?) as _), access)
        .catalogs(audit::registry::catalogs())
        .tail_interval(Duration::from_millis(100));
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

/// Polls `script` (a JavaScript expression) until it is truthy; its value.
async fn until(c: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = c
            .execute(&format!("return {script};"), vec![])
            .await
            .unwrap();
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The record ids of the table's rows, top to bottom.
async fn row_ids(c: &Client) -> Vec<String> {
    let v = c
        .execute(
            "return [...document.querySelectorAll('#results tbody tr')].map(r => r.dataset.id);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Waits for the page to settle after a load (the status no longer says loading).
async fn loaded(c: &Client) {
    until(
        c,
        "the records",
        "document.getElementById('status').textContent && \
         !document.getElementById('status').textContent.startsWith('Loading')",
    )
    .await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

async fn sign_in(c: &Client, base: &str, path: &str, token: &str) {
    c.goto(&format!("{base}{path}")).await.unwrap();
    let field = c.wait().for_element(Locator::Id("token")).await.unwrap();
    until(
        c,
        "the sign-in form",
        "!document.getElementById('signin').hidden",
    )
    .await;
    field.send_keys(token).await.unwrap();
    click(c, "#signin button[type=submit]").await;
    until(c, "the app", "!document.getElementById('app').hidden").await;
    loaded(c).await;
}

fn ids_of<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<String> {
    records.map(|r| r.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let guard = quickstart_store(&db);
    let all = Sqlite::open(&db)
        .unwrap()
        .query(&Query::all().limit(100))
        .unwrap()
        .records;
    assert!(all.len() >= 9, "the quickstart wrote its records");
    let addr = serve(db.clone());
    let base = format!("http://{addr}");
    let driver = Driver::start();
    let c = driver.browser(&dir.path().join("profile")).await;

    // Signed in as an admin: every record, newest first, the chain verified.
    sign_in(&c, &base, "/", ADMIN).await;
    assert_eq!(row_ids(&c).await, ids_of(all.iter()));
    let badge = until(&c, "the verify badge", "document.getElementById('verify').textContent.startsWith('Chain') && document.getElementById('verify').textContent").await;
    assert_eq!(badge, json!(format!("Chain intact · {} rows", all.len())));
    screenshot(&c, "1-all-records").await;

    // Filter by actor: only Bob's rows, and the filter is in the URL.
    let bob = "bob@globex.example";
    c.find(Locator::Id("actor"))
        .await
        .unwrap()
        .send_keys(bob)
        .await
        .unwrap();
    click(&c, "#apply").await;
    until(
        &c,
        "the actor filter in the URL",
        "location.search.includes('actor=')",
    )
    .await;
    loaded(&c).await;
    let bobs = ids_of(
        all.iter()
            .filter(|r| r.context.actor.as_ref().and_then(|a| a.email.as_deref()) == Some(bob)),
    );
    assert!(!bobs.is_empty());
    assert_eq!(row_ids(&c).await, bobs);
    let url = c.current_url().await.unwrap();
    assert!(
        url.query().unwrap().contains("actor=bob%40globex.example"),
        "{url}"
    );
    screenshot(&c, "2-filtered-by-actor").await;

    // Export of the current filter returns the filtered rows (the page's own
    // download path: the blob it hands to the browser is read back).
    c.execute(
        "window.__exported = null; const make = URL.createObjectURL; \
         URL.createObjectURL = (b) => { b.text().then(t => window.__exported = t); return make(b); };",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "#export-jsonl").await;
    let exported = until(&c, "the export", "window.__exported").await;
    let exported: Vec<String> = exported
        .as_str()
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(exported, bobs, "the export holds the filtered rows");

    // A shared link with 3 rows a page: forward twice, then back twice.
    c.goto(&format!("{base}/?limit=3")).await.unwrap();
    loaded(&c).await;
    let pages: Vec<Vec<String>> = all.chunks(3).map(|p| ids_of(p.iter())).collect();
    assert_eq!(row_ids(&c).await, pages[0]);
    for page in &pages[1..] {
        click(&c, "#next").await;
        until(&c, "the next page", "location.search.includes('cursor=')").await;
        loaded(&c).await;
        assert_eq!(&row_ids(&c).await, page);
    }
    screenshot(&c, "3-last-page").await;
    for page in pages[..pages.len() - 1].iter().rev() {
        click(&c, "#prev").await;
        loaded(&c).await;
        until(
            &c,
            "the page before",
            &format!(
                "document.querySelector('#results tbody tr') && \
                 document.querySelector('#results tbody tr').dataset.id === '{}'",
                page[0]
            ),
        )
        .await;
        assert_eq!(&row_ids(&c).await, page);
    }
    assert_eq!(
        c.find(Locator::Id("prev"))
            .await
            .unwrap()
            .prop("disabled")
            .await
            .unwrap(),
        Some("true".into())
    );

    // An entity update: the detail panel shows before / after, changes marked.
    c.goto(&format!("{base}/?event=user_update")).await.unwrap();
    loaded(&c).await;
    let rows = c.find_all(Locator::Css("#results tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1);
    // By keyboard: the row takes the focus and Enter opens it.
    rows[0].send_keys("\u{e007}").await.unwrap();
    until(
        &c,
        "the detail panel",
        "!document.getElementById('detail').hidden",
    )
    .await;
    let changed = c
        .execute(
            "return [...document.querySelectorAll('table.changes tr.changed')].map(r => \
             [...r.children].map(c => c.textContent));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        changed,
        json!([
            ["name (changed)", "Ann", "Ann Smith"],
            ["password_hash (changed)", "[REDACTED]", "[REDACTED]"]
        ])
    );
    let unchanged = c
        .execute(
            "return [...document.querySelectorAll('table.changes tbody tr:not(.changed) th')].map(c => c.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unchanged, json!(["id", "email"]));
    screenshot(&c, "4-entity-update-detail").await;
    // Escape closes it and gives the focus back to the row.
    c.find(Locator::Id("detail-title"))
        .await
        .unwrap()
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    until(
        &c,
        "the panel to close",
        "document.getElementById('detail').hidden",
    )
    .await;

    // Live mode: records written now appear at the top without a reload.
    c.goto(&format!("{base}/")).await.unwrap();
    loaded(&c).await;
    click(&c, "#live").await;
    until(
        &c,
        "the live tail",
        "document.getElementById('status').textContent.startsWith('Live')",
    )
    .await;
    mnoe_app::scenario();
    audit::flush();
    let fresh = until(
        &c,
        "new records",
        "document.querySelectorAll('#results tr.fresh').length >= 9 && \
         document.querySelectorAll('#results tr.fresh').length",
    )
    .await;
    assert_eq!(fresh, json!(all.len()));
    let now = Sqlite::open(&db)
        .unwrap()
        .query(&Query::all().limit(100))
        .unwrap()
        .records;
    assert_eq!(
        row_ids(&c).await[..all.len()],
        ids_of(now.iter())[..all.len()]
    );
    screenshot(&c, "5-live").await;
    click(&c, "#live").await;
    c.close().await.unwrap();

    // A tenant token: only acme's rows, on every page and filter; globex refused.
    let c = driver.browser(&dir.path().join("profile-acme")).await;
    sign_in(&c, &base, "/?limit=100", ACME).await;
    let acme: HashSet<String> = ids_of(
        now.iter()
            .filter(|r| r.context.tenant.as_deref() == Some("acme")),
    )
    .into_iter()
    .collect();
    let shown = row_ids(&c).await;
    assert_eq!(shown.iter().cloned().collect::<HashSet<_>>(), acme);
    assert_eq!(
        c.execute("return document.getElementById('tenant-field').hidden && document.getElementById('verify').hidden;", vec![]).await.unwrap(),
        json!(true),
        "no tenant picker, no store-wide verification for a tenant"
    );
    screenshot(&c, "6-tenant-acme").await;
    c.goto(&format!("{base}/?tenant=globex")).await.unwrap();
    let error = until(
        &c,
        "the refusal",
        "document.getElementById('error').textContent",
    )
    .await;
    assert!(
        error.as_str().unwrap().contains("sees tenant `acme` only"),
        "{error}"
    );
    assert!(row_ids(&c).await.is_empty());
    c.goto(&format!("{base}/?actor={bob}")).await.unwrap();
    loaded(&c).await;
    assert!(
        row_ids(&c).await.is_empty(),
        "Bob is globex's: none of his rows"
    );
    c.close().await.unwrap();
    drop(guard);
}
