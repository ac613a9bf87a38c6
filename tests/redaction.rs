//! Property: a secret in a redacted field, or under a redacted key nested in JSON,
//! never appears in any sink's bytes (records, JSON Lines file, spool files).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use audit::Auditor;
use audit::dispatch::with_dispatch;
use audit::pipeline::Retry;
use audit::sinks::{Batch, JsonLines, Sink, SinkError};
use audit_support_crate::{SignIn, sign_in};

/// A sink that is down: everything it gets ends up in its spool files.
struct Down(Arc<AtomicBool>);

impl Sink for Down {
    fn name(&self) -> &str {
        "down"
    }
    fn write(&mut self, _: &Batch) -> Result<(), SinkError> {
        Err(SinkError::retryable("down"))
    }
    fn health(&mut self) -> Result<(), SinkError> {
        if self.0.load(Ordering::SeqCst) {
            Err(SinkError::retryable("down"))
        } else {
            Ok(())
        }
    }
}

fn secret(rng: &mut fastrand::Rng) -> String {
    // Long enough and random enough never to occur by chance in a record.
    let alphabet: Vec<char> =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%&*+-/=?^_~é€"
            .chars()
            .collect();
    (0..rng.usize(12..40))
        .map(|_| alphabet[rng.usize(..alphabet.len())])
        .collect()
}

fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn secrets_never_reach_a_sink() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for case in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let down = Arc::new(AtomicBool::new(true));
        let auditor = Auditor::builder()
            .sink(JsonLines::open(dir.path().join("audit.jsonl")).unwrap())
            .sink(Down(down.clone()))
            .spool_dir(dir.path().join("spool"))
            .retry(Retry {
                attempts: 1,
                ..Retry::default()
            })
            .build()
            .unwrap();
        let mut secrets = Vec::new();
        with_dispatch(Arc::new(auditor.clone()), || {
            for _ in 0..rng.usize(1..30) {
                let (password, token) = (secret(&mut rng), secret(&mut rng));
                let depth = rng.usize(0..4);
                let mut extra = serde_json::json!({ "token": token });
                for _ in 0..depth {
                    extra = serde_json::json!({ "nested": [extra], "client": "web" });
                }
                let s = SignIn {
                    login: format!("user{case}"),
                    ip: None,
                    password: password.clone(),
                    extra,
                };
                let _ = sign_in(&s, rng.u32(0..6));
                secrets.push(password);
                secrets.push(token);
            }
        });
        auditor.shutdown();
        let bytes = all_bytes(dir.path());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("[REDACTED]"), "the marker is there");
        assert!(text.contains(&format!("user{case}")), "the rest is there");
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "case {case}: secret {s:?} leaked"
            );
        }
    }
}
