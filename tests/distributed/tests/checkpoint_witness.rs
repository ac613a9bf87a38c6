//! Checkpoints published to a real NATS JetStream key-value bucket while records are
//! written into a real PostgreSQL store; read back from the bucket, they hold, and
//! the newest one names a removed tail. Unreachable servers fail the test.

#[path = "../../store_suite/mod.rs"]
mod store_suite;

use std::time::Duration;

use audit::sinks::CheckpointBucket;
use audit::store::checkpoint::Publisher;
use audit::store::{Checkpoint, CheckpointKey, Finding, Postgres, Store};

use audit_distributed_tests::{delete_stream, nats_url, pg_url};

#[test]
fn checkpoints_in_a_kv_bucket_witness_a_postgres_store() {
    let tag = std::process::id();
    let schema = format!("audit_witness_{tag}");
    let bucket_name = format!("AUDIT_CP_{tag}");
    let open = {
        let schema = schema.clone();
        move || Postgres::options().schema(&schema).connect(&pg_url())
    };
    let mut store = open().unwrap();
    let key = CheckpointKey::generate().unwrap();
    let public = key.public();
    let bucket = CheckpointBucket::connect(&nats_url(), &bucket_name, 64).unwrap();
    let publisher = Publisher::spawn(
        open.clone(),
        key,
        Duration::from_millis(30),
        bucket.publish(),
    );
    for i in 0..20 {
        store_suite::populate(&mut store, 1, 1_780_000_000_000_000_000 + i * 1_000_000);
        std::thread::sleep(Duration::from_millis(10));
    }
    publisher.stop();

    let (checkpoint, _) = store.checkpoint().unwrap();
    let reader = CheckpointBucket::connect(&nats_url(), &bucket_name, 64).unwrap();
    let texts = reader.history(&checkpoint.store).unwrap();
    let opened: Vec<Checkpoint> = texts
        .iter()
        .map(|t| Checkpoint::open(t, &public).unwrap())
        .collect();
    let newest = opened.last().cloned().unwrap();

    let mut admin = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    let result = || {
        assert!(
            opened.len() >= 2,
            "published at start, meanwhile and at stop: {}",
            opened.len()
        );
        assert_eq!(
            newest.seq, 20,
            "the last one, taken at stop, covers every row"
        );
        let (v, findings) = store.check_checkpoints(&opened).unwrap();
        assert!(v.is_intact());
        assert!(
            findings.iter().all(|f| *f == Finding::Holds),
            "{findings:?}"
        );
        // Someone with the database removes the newest rows.
        admin
            .batch_execute(&format!(
                "SET search_path TO {schema};
                 ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only;
                 DELETE FROM audit_records WHERE seq > 17;"
            ))
            .unwrap();
        let (v, findings) = store
            .check_checkpoints(std::slice::from_ref(&newest))
            .unwrap();
        assert!(v.is_intact(), "verify alone passes");
        assert_eq!(
            findings[0],
            Finding::Truncated {
                checkpoint_seq: 20,
                last_seq: 17
            }
        );
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(result));
    let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    delete_stream(&format!("KV_{bucket_name}"));
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
