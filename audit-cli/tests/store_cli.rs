//! `audit query | show | verify | purge | tail` against a real SQLite store.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use audit_runtime::integrity::Chain;
use audit_runtime::sinks::{Item, Sink};
use audit_runtime::store::{Sqlite, SqliteOptions};
use audit_runtime::{Record, Timestamp};
use serde_json::json;

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AUDIT_DB")
        .env_remove("AUDIT_HMAC_KEY")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const DAY: i64 = 86_400 * 1_000_000_000;

/// Record `i`, `age_days` old.
fn record(i: usize, age_days: i64) -> Record {
    let time = Timestamp::from_nanos(Timestamp::now().as_nanos() - age_days * DAY + i as i64);
    let (actor, tenant) = if i.is_multiple_of(2) {
        ("u-1", "acme")
    } else {
        ("u-2", "globex")
    };
    serde_json::from_value(json!({
        "id": uuid::Uuid::now_v7(), "time": time, "event": if i == 3 { "user_update" } else { "app_launch" },
        "code": 3, "category": "app", "level": "info",
        "outcome": if i == 1 { "failure" } else { "success" },
        "error": if i == 1 { json!("app not found") } else { json!(null) },
        "duration_ns": 10, "description": format!("record number {i}"),
        "actor": {"id": actor, "email": format!("{actor}@example.com"), "name": null, "kind": "user"},
        "impersonator": null, "tenant": tenant, "environment": null, "source": null, "request": null,
        "entity": {"type": "user", "type_code": 4, "id": i},
        "changes": if i == 3 {
            json!({"previous": {"name": "Ann"}, "current": {"name": "Ann Smith"},
                   "difference": {"name": ["Ann", "Ann Smith"]}})
        } else { json!(null) },
        "metadata": {"app_nid": format!("nid-{i}")},
        "site": {"module": "m", "file": "f.rs", "line": 1, "function": "f"},
        "prev_hash": null, "hash": null
    }))
    .map(|mut r: Record| {
        // Records 6 and 7 are one bulk call.
        if (6..8).contains(&i) {
            r.operation = Some(audit_runtime::record::Operation {
                id: operation_id(),
                count: Some(2),
                index: Some(i as u32 - 6),
            });
        }
        r
    })
    .unwrap()
}

/// The operation id of records 6 and 7: a UUIDv7 of a moment before them.
fn operation_id() -> uuid::Uuid {
    static ID: std::sync::OnceLock<uuid::Uuid> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let ns = Timestamp::now().as_nanos() - DAY - 10_000_000;
        uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            (ns / 1_000_000_000) as u64,
            (ns % 1_000_000_000) as u32,
        ))
    })
}

/// A store with `n` records: the first half 100 days old, the rest 1 day old.
fn store(dir: &Path, n: usize) -> (String, Vec<Record>) {
    store_with(&dir.join("audit.db"), Sqlite::options(), n)
}

/// [`store`] at `path`, opened with `options`.
fn store_with(path: &Path, options: SqliteOptions, n: usize) -> (String, Vec<Record>) {
    let mut store = options.open(path).unwrap();
    let mut chain = Chain::new();
    let mut records = Vec::new();
    let items: Vec<Item> = (0..n)
        .map(|i| {
            let mut r = record(i, if i < n / 2 { 100 } else { 1 });
            let json = chain.link(&mut r);
            records.push(r.clone());
            Item::with_json(r, json, Arc::from("x"))
        })
        .collect();
    store.write(&items).unwrap();
    // Sealed segments' postings (made off the writer) written, as a store that
    // kept writing would have them.
    store.settle().unwrap();
    (path.to_str().unwrap().to_string(), records)
}

#[test]
fn query_prints_a_table_or_json_lines_and_pages_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 10);

    let out = audit(&["query", "--db", &db, "--tenant", "acme", "--limit", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TIME (UTC)") && lines[0].contains("DESCRIPTION"));
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("u-1@example.com") && lines[1].contains("record number 8"));
    // The whole next command, ready to paste.
    let hint = stderr(&out);
    let command = hint.trim().strip_prefix("more: ").unwrap();
    assert!(
        command.starts_with("audit query --db ")
            && command.contains(" --tenant acme --limit 3 --cursor "),
        "{command}"
    );
    let cursor = command.rsplit(' ').next().unwrap().to_string();

    let out = audit(&[
        "query", "--db", &db, "--tenant", "acme", "--limit", "3", "--cursor", &cursor, "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let next: Vec<Record> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<_> = [2, 0].iter().map(|&i| records[i].id).collect();
    assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), want);
    assert_eq!(stderr(&out), "", "last page: no cursor");

    let out = audit(&["query", "--db", &db, "--outcome", "failure", "--json"]);
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = audit(&[
        "query", "--db", &db, "--entity", "user:3", "--since", "2d", "--json",
    ]);
    assert_eq!(stdout(&out).lines().count(), 0, "record 3 is 100 days old");
    let out = audit(&[
        "query", "--db", &db, "--entity", "user:7", "--since", "2d", "--json",
    ]);
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = audit(&[
        "query",
        "--db",
        &db,
        "--actor",
        "u-2@example.com",
        "--until",
        "50d",
        "--json",
    ]);
    assert_eq!(stdout(&out).lines().count(), 2, "records 1 and 3");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let out = audit(&["query", "--db", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no store at"), "{}", stderr(&out));
    assert!(!missing.exists(), "a mistyped path must not create a store");

    let (db, _) = store(dir.path(), 2);
    let out = audit(&["query", "--db", &db, "--cursor", "c1-garbage"]);
    assert!(stderr(&out).contains("invalid cursor `c1-garbage`"));
    let out = audit(&["query", "--db", &db, "--since", "yesterday-ish"]);
    assert!(stderr(&out).contains("neither a duration"));
    let out = audit(&["show", "not-a-uuid", "--db", &db]);
    assert!(stderr(&out).contains("is not a record id"));
}

#[test]
fn show_prints_the_difference_as_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 6);
    let id = records[3].id.to_string();
    let out = audit(&["show", &id, "--db", &db]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("id           {id}")), "{text}");
    assert!(text.contains("  name: \"Ann\" -> \"Ann Smith\""), "{text}");
    assert!(
        text.contains("actor        u-2@example.com (u-2)"),
        "{text}"
    );
    assert!(!text.contains("\x1b["), "NO_COLOR");
}

#[test]
fn verify_exits_1_naming_the_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 8);
    let out = audit(&["verify", "--db", &db]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("8 rows, chain sha256"));
    assert!(stdout(&out).ends_with("intact\n"));

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_records_no_update;
         UPDATE audit_records SET record = replace(record, 'record number 5', 'record number 50') WHERE seq = 6;",
    )
    .unwrap();
    let out = audit(&["verify", "--db", &db]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "BROKEN: record {} (row 6) was changed",
            records[5].id
        )),
        "{text}"
    );
}

/// `verify` makes a SQLite store's postings again from its rows: postings edited
/// to hide rows fail it, naming their table, though the chain is intact.
#[test]
fn verify_exits_1_naming_postings_that_no_longer_match() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = store_with(
        &dir.path().join("p.db"),
        Sqlite::options().segment_rows(4),
        10,
    );
    let db = db.as_str();
    let out = audit(&["verify", "--db", db]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch("DELETE FROM audit_postings WHERE segment = 0 AND kind = 3")
        .unwrap();
    let out = audit(&["verify", "--db", db]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "BROKEN: audit_postings of audit_records does not match its segment's rows: \
             the tenant postings from `acme` are missing"
        ),
        "{text}"
    );
}

/// `purge --tenant` erases one tenant's records (exported first); `show`, `query`
/// and `tail` no longer find them, and `verify` still passes and counts them.
#[test]
fn purge_tenant_erases_its_records_and_the_store_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 10);
    let export = dir.path().join("acme.jsonl");
    let out = audit(&[
        "purge",
        "--db",
        &db,
        "--tenant",
        "acme",
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("erased 5 records of tenant `acme`\nexported 5 records"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 5);
    let out = audit(&["show", "--db", &db, &records[0].id.to_string()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no record"), "{}", stderr(&out));
    let out = audit(&["query", "--db", &db, "--json", "--limit", "100"]);
    assert_eq!(stdout(&out).lines().count(), 5);
    assert!(!stdout(&out).contains("acme"));
    let out = audit(&["tail", "--db", &db, "--json", "--for", "10ms"]);
    assert!(!stdout(&out).contains("acme"), "{}", stdout(&out));
    let out = audit(&["verify", "--db", &db]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("erased: 5 records"),
        "{}",
        stdout(&out)
    );
    // Without a tenant, the age is required.
    let out = audit(&["purge", "--db", &db]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--older-than"), "{}", stderr(&out));
}

/// The rough edges of issue 17: UUID entity ids keep their distinguishing tail in
/// the table, `show` takes a unique prefix, `tail` filters by event and level,
/// `verify` checks a JSON Lines file.
#[test]
fn cli_rough_edges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut store = Sqlite::open(&path).unwrap();
    let mut chain = Chain::new();
    let mut lines = Vec::new();
    let items: Vec<Item> = (0..4)
        .map(|i| {
            let mut r = record(i, 1);
            r.entity.as_mut().unwrap().id = Some(json!(uuid::Uuid::now_v7().to_string()));
            let json = chain.link(&mut r);
            lines.push(json.clone());
            Item::with_json(r, json, Arc::from("x"))
        })
        .collect();
    let ids: Vec<String> = items
        .iter()
        .map(|i| {
            i.record()
                .entity
                .as_ref()
                .unwrap()
                .id
                .as_ref()
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let record_ids: Vec<String> = items.iter().map(|i| i.record().id.to_string()).collect();
    store.write(&items).unwrap();
    drop(store);
    let db = path.to_str().unwrap();

    let out = audit(&["query", "--db", db]);
    let text = stdout(&out);
    for id in &ids {
        let tail = &id[id.len() - 8..];
        assert!(
            text.contains(tail),
            "the id's tail {tail} is shown:\n{text}"
        );
    }

    // A unique prefix: all but the last two digits (ids made in the same
    // millisecond share their time and, with uuid's counter, more).
    let full = &record_ids[3];
    let out = audit(&["show", "--db", db, "--json", &full[..34]]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(full.as_str()));
    let out = audit(&["show", "--db", db, "abc"]);
    assert!(
        stderr(&out).contains("8 hex digits or more"),
        "{}",
        stderr(&out)
    );
    let out = audit(&["show", "--db", db, "00000000"]);
    assert!(
        stderr(&out).contains("no record id starts with"),
        "{}",
        stderr(&out)
    );

    let out = audit(&[
        "tail",
        "--db",
        db,
        "--json",
        "--event",
        "user_update",
        "--for",
        "10ms",
    ]);
    let shown: Vec<Record> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].event, "user_update");

    let file = dir.path().join("audit.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = audit(&["verify", "--db", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("4 records (JSON Lines)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("1 started here, 0 records continue"),
        "{}",
        stdout(&out)
    );
    let tampered = lines
        .join("\n")
        .replacen("record number 2", "record number 9", 1);
    std::fs::write(&file, tampered).unwrap();
    let out = audit(&["verify", "--db", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("BROKEN: line 3: the record was changed"),
        "{}",
        stdout(&out)
    );
    // A line removed: the next record continues a chain the file does not hold.
    let mut missing = lines.clone();
    missing.remove(1);
    std::fs::write(&file, missing.join("\n")).unwrap();
    let out = audit(&["verify", "--db", file.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("1 records continue"),
        "{}",
        stdout(&out)
    );
}

/// `audit serve` answers the API on loopback, refuses to serve everyone as an admin
/// on another address, and stops cleanly on Ctrl-C.
#[test]
fn serve_answers_the_api_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 6);
    let out = audit(&["serve", "--db", &db, "--addr", "0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(["serve", "--db", &db, "--addr", &addr])
        .env_remove("AUDIT_DB")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(5)))
        .build()
        .into();
    let url = format!("http://{addr}/api/records?tenant=acme&order=oldest");
    let body = (0..100)
        .find_map(|_| {
            let r = agent.get(&url).call().ok();
            if r.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r
        })
        .expect("the server answers")
        .body_mut()
        .read_to_string()
        .unwrap();
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let got: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let want: Vec<String> = records
        .iter()
        .filter(|r| r.context.tenant.as_deref() == Some("acme"))
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(got, want);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped cleanly on Ctrl-C: {status:?}");
}

/// `--field name=value` filters on a metadata value.
#[test]
fn query_filters_on_a_metadata_field() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 10);
    let out = audit(&["query", "--db", &db, "--json", "--field", "app_nid=nid-3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<Record> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        [records[3].id]
    );
    let out = audit(&["query", "--db", &db, "--field", "app_nid"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("name=value"), "{}", stderr(&out));
}

/// `--operation ID` lists the records of one bulk call.
#[test]
fn query_lists_the_records_of_one_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 10);
    let id = operation_id().to_string();
    let out = audit(&[
        "query",
        "--db",
        &db,
        "--json",
        "--oldest-first",
        "--operation",
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<uuid::Uuid> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Record>(l).unwrap().id)
        .collect();
    assert_eq!(got, [records[6].id, records[7].id]);
    let out = audit(&["query", "--db", &db, "--operation", "not-a-uuid"]);
    assert!(!out.status.success());
}

#[test]
fn purge_exports_then_removes_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 10);
    let export = dir.path().join("old.jsonl");
    let out = audit(&[
        "purge",
        "--db",
        &db,
        "--older-than",
        "90d",
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("removed 5 records older than"),
        "{}",
        stdout(&out)
    );
    let exported: Vec<Record> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        exported.iter().map(|r| r.id).collect::<Vec<_>>(),
        records[..5].iter().map(|r| r.id).collect::<Vec<_>>()
    );
    let out = audit(&["verify", "--db", &db]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("purged: 5 records"));
    let out = audit(&["query", "--db", &db, "--json", "--limit", "100"]);
    assert_eq!(stdout(&out).lines().count(), 5);
}

#[test]
fn tail_prints_recent_records_then_follows_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = store(dir.path(), 4);
    let mut child = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args([
            "tail",
            "--db",
            &db,
            "-n",
            "2",
            "--interval",
            "50ms",
            "--for",
            "20s",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut next = || lines.next().unwrap().unwrap();
    // The two newest records first.
    let (first, second) = (next(), next());
    assert!(first.contains("record number 2") && second.contains("record number 3"));
    // A record written now, with an *older* time than those shown: tail follows the
    // store's order, not time.
    let mut writer = Sqlite::open(&db).unwrap();
    let mut late = record(42, 30);
    late.description = "late arrival".into();
    writer.write(&[Item::new(late, "x")]).unwrap();
    let third = next();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(third.contains("late arrival"), "{third}");
}

/// The same commands against PostgreSQL (`AUDIT_TEST_POSTGRES`), in a schema of its own
/// selected through the URL's `options`.
#[test]
fn query_and_verify_a_postgres_store() {
    let base = std::env::var("AUDIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("audit_cli_{}", std::process::id());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
    let mut store = audit_runtime::store::Postgres::options()
        .schema(&schema)
        .connect(&base)
        .unwrap();
    let items: Vec<Item> = (0..6).map(|i| Item::new(record(i, 1), "x")).collect();
    store.write(&items).unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    let out = audit(&["query", "--db", &url, "--tenant", "acme", "--json"]);
    let lines = stdout(&out).lines().count();
    let verify = audit(&["verify", "--db", &url]);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines, 3);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("6 rows, chain sha256"));
}

#[test]
fn show_and_tail_honour_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 6);
    // Record 3 is globex's: acme cannot read it by id.
    let id = records[3].id.to_string();
    let out = audit(&["show", &id, "--db", &db, "--tenant", "acme"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an error, as for any missing record"
    );
    assert!(
        stderr(&out).contains(&format!("no record {id} of tenant `acme`")),
        "{}",
        stderr(&out)
    );
    let out = audit(&["show", &id, "--db", &db, "--tenant", "globex"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // tail shows acme's records only: the even ones.
    let out = audit(&[
        "tail", "--db", &db, "--tenant", "acme", "-n", "10", "--for", "100ms", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Vec<String> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Record>(l).unwrap().description)
        .collect();
    assert_eq!(
        shown,
        ["record number 0", "record number 2", "record number 4"]
    );
}

/// `audit store roles` sets up the least-privileged roles; the reader then queries.
#[test]
fn store_roles_then_query_as_the_reader() {
    let base = std::env::var("AUDIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let tag = format!("audit_cli_roles_{}", std::process::id());
    let role = |r: &str| format!("{tag}_{r}");
    let out = audit(&[
        "store",
        "roles",
        "--db",
        &base,
        "--schema",
        &tag,
        "--owner",
        &role("owner"),
        "--writer",
        &role("writer"),
        "--reader",
        &role("reader"),
        "--admin",
        &role("admin"),
    ]);
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
    let config: postgres::Config = base.parse().unwrap();
    let as_role = |r: &str| {
        let host = match &config.get_hosts()[0] {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        format!(
            "postgres://{}@{host}:{}/{}?options=-csearch_path%3D{tag}",
            role(r),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("postgres")
        )
    };
    let written = audit_runtime::store::Postgres::options()
        .schema(&tag)
        .connect(&as_role("writer"))
        .and_then(|mut s| {
            let items: Vec<Item> = (0..4).map(|i| Item::new(record(i, 1), "x")).collect();
            s.write(&items)
                .map_err(|e| audit_runtime::store::StoreError::Database(e.to_string()))
        });
    let query = audit(&["query", "--db", &as_role("reader"), "--json"]);
    let purge = audit(&["purge", "--db", &as_role("reader"), "--older-than", "0d"]);
    let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {tag} CASCADE"));
    for r in ["owner", "writer", "reader", "admin"] {
        let _ = admin.batch_execute(&format!(
            "DROP OWNED BY {0} CASCADE; DROP ROLE IF EXISTS {0}",
            role(r)
        ));
    }
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("created role {}", role("writer"))),
        "{}",
        stdout(&out)
    );
    written.unwrap();
    assert!(query.status.success(), "{}", stderr(&query));
    assert_eq!(stdout(&query).lines().count(), 4);
    assert!(!purge.status.success());
    assert!(
        stderr(&purge).contains("permission denied"),
        "{}",
        stderr(&purge)
    );
}

/// A password given in `--db` or `$AUDIT_DB` is never printed: not in an error, not
/// in `--help`.
#[test]
fn passwords_never_appear_in_output() {
    let bad = "postgres://app:hunter2-secret@127.0.0.1:1/none?connect_timeout=bogus";
    let out = audit(&["query", "--db", bad]);
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    let help = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(["query", "--help"])
        .env("AUDIT_DB", bad)
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(!stdout(&help).contains("hunter2"), "{}", stdout(&help));
    let sqlite = audit(&[
        "store", "roles", "--db", "audit.db", "--owner", "o", "--writer", "w", "--reader", "r",
        "--admin", "a",
    ]);
    assert_eq!(sqlite.status.code(), Some(2));
    assert!(
        stderr(&sqlite).contains("SQLite file has no roles"),
        "{}",
        stderr(&sqlite)
    );
}

/// `audit keygen`, `audit checkpoint`, then `audit verify --checkpoint`: the check
/// holds, then names the removal of the newest rows (which `verify` alone passes).
#[test]
fn checkpoint_then_verify_detects_a_removed_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = store(dir.path(), 8);
    let key = dir.path().join("witness.key");
    let out = audit(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = dir.path().join("witness.key.pub");
    assert!(public.exists());
    let again = audit(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "never overwritten");

    let cp = dir.path().join("cp-1.txt");
    let out = audit(&[
        "checkpoint",
        "--db",
        &db,
        "--key",
        key.to_str().unwrap(),
        "-o",
        cp.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&cp).unwrap();
    assert!(text.starts_with("audit-checkpoint/v1\n"), "{text}");
    assert!(
        text.contains("\nseq 8\n") && text.contains("\nrows 8\n"),
        "{text}"
    );

    let verify = |db: &str| {
        audit(&[
            "verify",
            "--db",
            db,
            "--checkpoint",
            cp.to_str().unwrap(),
            "--public-key",
            public.to_str().unwrap(),
        ])
    };
    let out = verify(&db);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("(row 8,"), "{}", stdout(&out));

    // The newest rows removed by someone holding the file.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_records_no_delete; DELETE FROM audit_records WHERE seq > 5;",
    )
    .unwrap();
    let plain = audit(&["verify", "--db", &db]);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "verify alone passes: {}",
        stdout(&plain)
    );
    let out = verify(&db);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("BROKEN: the newest rows were removed: the checkpoint saw row 8, the store now ends at row 5"),
        "{}",
        stdout(&out)
    );

    // A checkpoint altered by hand, or checked with another key, is refused.
    let forged = dir.path().join("cp-forged.txt");
    std::fs::write(&forged, text.replace("seq 8", "seq 5")).unwrap();
    let out = audit(&[
        "verify",
        "--db",
        &db,
        "--checkpoint",
        forged.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signature does not match"),
        "{}",
        stderr(&out)
    );
}

/// A keyed store verified with its key read from a file (never a flag); a short key
/// is refused.
#[test]
fn verify_with_the_key_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyed.db");
    let key = "0123456789abcdef0123456789abcdef";
    let mut store = Sqlite::options().hmac_key(key).open(&db).unwrap();
    let items: Vec<Item> = (0..3).map(|i| Item::new(record(i, 1), "x")).collect();
    store.write(&items).unwrap();
    drop(store);
    let key_file = dir.path().join("hmac.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let db = db.to_str().unwrap();
    let out = audit(&[
        "verify",
        "--db",
        db,
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("chain hmac-sha256"),
        "{}",
        stdout(&out)
    );
    std::fs::write(&key_file, "short\n").unwrap();
    let out = audit(&[
        "verify",
        "--db",
        db,
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at least 32"), "{}", stderr(&out));
}

#[test]
fn history_lists_an_entitys_records_and_its_state_as_of_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (db, records) = store(dir.path(), 6);
    let out = audit(&["history", "user:3", "--db", &db, "--as-of", "0s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("record number 3"), "{text}");
    assert!(!text.contains("record number 2"), "{text}");
    assert!(text.contains("\"name\": \"Ann Smith\""), "{text}");
    let out = audit(&[
        "history", "user:3", "--db", &db, "--json", "--as-of", "200d",
    ]);
    let last = stdout(&out).lines().last().unwrap().to_owned();
    assert_eq!(last, r#"{"state":"unknown"}"#);
    let json = stdout(&audit(&["history", "user:3", "--db", &db, "--json"]));
    assert!(json.contains(&records[3].id.to_string()));
    // Another tenant's entity is not this tenant's; a bad entity is named.
    let out = audit(&["history", "user:3", "--db", &db, "--tenant", "acme"]);
    assert!(!stdout(&out).contains("record number 3"));
    let out = audit(&["history", "user3", "--db", &db]);
    assert!(stderr(&out).contains("type:id"), "{}", stderr(&out));
}

/// `audit verify` reads a JSON Lines file the sink compressed with zstd, and a
/// write cut short in its last frame is a break after every record before it.
#[test]
fn verify_reads_a_zstd_json_lines_file_up_to_a_torn_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl.zst");
    let mut sink = audit_runtime::sinks::JsonLines::open(&path)
        .unwrap()
        .zstd(3)
        .unwrap();
    let mut chain = Chain::new();
    for batch in 0..3 {
        let items: Vec<Item> = (0..4)
            .map(|i| {
                let mut r = record(batch * 4 + i, 1);
                let json = chain.link(&mut r);
                let name: Arc<str> = Arc::from(&*r.event);
                Item::with_json(r, json, name)
            })
            .collect();
        sink.write(&items).unwrap();
    }
    sink.flush().unwrap();
    drop(sink);
    let file = path.to_str().unwrap();
    let out = audit(&["verify", "--db", file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("12 records (JSON Lines, zstd)"), "{text}");
    assert!(
        text.contains("1 started here, 0 records continue"),
        "{text}"
    );
    assert!(text.contains("intact"), "{text}");

    // The last frame loses its checksum and a byte of its block.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let out = audit(&["verify", "--db", file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("8 records (JSON Lines, zstd)"), "{text}");
    assert!(text.contains("BROKEN: line 9: unreadable"), "{text}");
}
