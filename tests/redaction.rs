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

/// A sink that refuses every record for good: everything it gets is dead-lettered,
/// with its error message as the reason.
struct Refuses;

impl Sink for Refuses {
    fn name(&self) -> &str {
        "refuses"
    }
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        Err(SinkError::rejected(
            format!("refused {} records", batch.len()),
            batch.iter().map(|i| i.record().id).collect(),
        ))
    }
}

/// Hands events to the auditor after writing their `Debug` into a shared buffer.
struct Debugging {
    inner: Auditor,
    seen: Arc<std::sync::Mutex<String>>,
}

impl audit::dispatch::Dispatch for Debugging {
    fn dispatch(&self, event: audit::dispatch::Event) -> Result<(), audit::DeliveryError> {
        self.seen.lock().unwrap().push_str(&format!("{event:?}\n"));
        self.inner.dispatch(event)
    }
    fn flush(&self) -> bool {
        self.inner.flush()
    }
}

/// Property: secrets planted under redacted keys of any case or pattern (catalog names,
/// catalog patterns, the built-in list), in entity changes, and quoted by a handler's
/// error or panic, appear in no output: JSON Lines, the SQLite store, spools,
/// dead letters, listeners' `Debug` of records, `Debug` of events.
#[test]
fn secrets_never_leave_by_any_path() {
    use audit::store::Sqlite;
    use audit_support_crate::{Account, sign_in_panicking, sign_in_quoting, update_account};

    const KEYS: [&str; 9] = [
        "Password",
        "ACCESS_TOKEN",
        "apiKey",
        "x-api-key",
        "client_secret",
        "Authorization",
        "session_id",
        "Set-Cookie",
        "private_key",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed2);
    for case in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let debug_out = Arc::new(std::sync::Mutex::new(String::new()));
        let listened = debug_out.clone();
        let down = Arc::new(AtomicBool::new(true));
        let auditor = Auditor::builder()
            .sink(JsonLines::open(dir.path().join("audit.jsonl")).unwrap())
            .sink(Sqlite::open(dir.path().join("audit.db")).unwrap())
            .sink(Down(down.clone()))
            .sink(Refuses)
            .sink(audit::sinks::Listener::new(
                "debug",
                move |r: &audit::Record, _: &str| {
                    listened.lock().unwrap().push_str(&format!("{r:?}\n"));
                },
            ))
            .spool_dir(dir.path().join("spool"))
            .retry(Retry {
                attempts: 1,
                ..Retry::default()
            })
            .build()
            .unwrap();
        let dispatch = Arc::new(Debugging {
            inner: auditor.clone(),
            seen: debug_out.clone(),
        });
        let mut secrets = Vec::new();
        with_dispatch(dispatch, || {
            for i in 0..rng.usize(3..10) {
                let password = secret(&mut rng);
                let mut extra = serde_json::Map::new();
                for _ in 0..rng.usize(1..4) {
                    let s = secret(&mut rng);
                    extra.insert(KEYS[rng.usize(..KEYS.len())].to_string(), s.clone().into());
                    secrets.push(s);
                }
                let mut extra = serde_json::Value::Object(extra);
                for _ in 0..rng.usize(0..3) {
                    extra = serde_json::json!({ "nested": [extra], "client": "web" });
                }
                let s = SignIn {
                    login: format!("user{case}-{i}"),
                    ip: None,
                    password: password.clone(),
                    extra,
                };
                match rng.usize(0..3) {
                    0 => drop(sign_in(&s, 5)),
                    1 => drop(sign_in_quoting(&s)),
                    _ => {
                        let quoted = secrets.last().unwrap().clone();
                        let r = std::panic::catch_unwind(|| sign_in_panicking(&s, &quoted));
                        assert!(r.is_err());
                    }
                }
                secrets.push(password);

                let (token, card, hidden) = (secret(&mut rng), secret(&mut rng), secret(&mut rng));
                let mut account = Account {
                    id: i as i64,
                    plan: "free".into(),
                    api_token: secret(&mut rng),
                    card_number: secret(&mut rng),
                    settings: serde_json::json!({ "webhook": { "signing_secret": hidden } }),
                };
                secrets.extend([
                    token.clone(),
                    card.clone(),
                    hidden,
                    account.api_token.clone(),
                    account.card_number.clone(),
                ]);
                let plan = if rng.bool() { "declined" } else { "pro" };
                let _ = update_account(&mut account, plan, &token, &card);
            }
        });
        auditor.shutdown();
        let mut bytes = all_bytes(dir.path());
        bytes.extend(debug_out.lock().unwrap().as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("[REDACTED]"), "the marker is there");
        assert!(text.contains(&format!("user{case}-0")), "the rest is there");
        assert!(
            text.contains("wrong password [REDACTED] for"),
            "errors are kept, scrubbed"
        );
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "case {case}: secret {s:?} leaked"
            );
        }
    }
}
