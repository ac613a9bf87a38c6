//! A child process emits `sync` events and is killed with SIGKILL at a random
//! moment: every emission that returned `Ok` is in the store afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashSet;
use std::path::Path;

use audit::sinks::{JsonLines, SinkOptions};
use audit::store::Sqlite;
use audit::store::{Query, Store};
use audit::{Auditor, DeliveryError, audited};

#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not audited")
    }
}

impl From<DeliveryError> for Failed {
    fn from(_: DeliveryError) -> Self {
        Failed
    }
}

#[audited(event = "widget_delete", meta(name = name), durability = "sync")]
fn delete_widget(name: &str) -> Result<(), Failed> {
    Ok(())
}

const CHILD: &str = "AUDIT_CRASH_CHILD_DIR";
const SINK: &str = "AUDIT_CRASH_SINK";

/// The child: emits until killed, printing the name of each committed emission.
#[test]
fn child_emits_sync_events_until_killed() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let sink: Box<dyn audit::sinks::Sink> = match std::env::var(SINK).as_deref() {
        Ok("sqlite") => Box::new(Sqlite::open(dir.join("audit.db")).unwrap()),
        _ => Box::new(JsonLines::open(dir.join("audit.jsonl")).unwrap()),
    };
    let _guard = Auditor::builder()
        .sink_with(sink, SinkOptions::new().primary())
        .spool_dir(dir.join("spool"))
        .max_wait(Duration::from_millis(1))
        .install()
        .unwrap();
    for i in 0.. {
        let name = format!("w{i}");
        if delete_widget(&name).is_ok() {
            println!("{name}");
        }
    }
}

/// The `name` metadata of every record in the child's JSON Lines file.
fn names_in_jsonl(dir: &Path) -> HashSet<String> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<audit::Record>(l).ok())
        .map(|r| r.metadata["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The same from the child's SQLite store, whose chain must have survived the kill.
fn names_in_sqlite(dir: &Path) -> HashSet<String> {
    let mut store = Sqlite::open(dir.join("audit.db")).unwrap();
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{v:?}");
    let mut names = HashSet::new();
    let mut query = Query::all().limit(10_000);
    loop {
        let page = store.query(&query).unwrap();
        names.extend(
            page.records
                .iter()
                .map(|r| r.metadata["name"].as_str().unwrap().to_owned()),
        );
        match page.next {
            Some(c) => query = query.after(c),
            None => return names,
        }
    }
}

#[test]
fn every_committed_sync_event_survives_sigkill() {
    crash_rounds("jsonl", names_in_jsonl);
}

#[test]
fn every_committed_sync_event_survives_sigkill_in_sqlite() {
    crash_rounds("sqlite", names_in_sqlite);
}

fn crash_rounds(sink: &str, stored_names: fn(&Path) -> HashSet<String>) {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_emits_sync_events_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .env(SINK, sink)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut committed = Vec::new();
        // The clock starts at the first committed emission: how long the child takes
        // to start (a loaded CI machine) is not what this test is about.
        for line in lines.by_ref() {
            match line {
                Ok(l) if l.starts_with('w') => {
                    committed.push(l);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let kill_after = Duration::from_millis(100 + fastrand::u64(0..400));
        let start = Instant::now();
        while start.elapsed() < kill_after {
            match lines.next() {
                Some(Ok(l)) if l.starts_with('w') => committed.push(l),
                Some(_) => {}
                None => break,
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines the child printed before dying were committed too.
        committed.extend(lines.map_while(Result::ok).filter(|l| l.starts_with('w')));
        assert!(
            committed.len() > 10,
            "{sink} round {round}: the child emitted only {}",
            committed.len()
        );
        let names = stored_names(dir.path());
        let missing: Vec<_> = committed.iter().filter(|n| !names.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{sink} round {round}: committed but not stored: {missing:?}"
        );
    }
}
