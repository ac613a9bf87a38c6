//! Property, over the real services: secrets planted under redacted keys (any case,
//! catalog patterns, the built-in list), in entity changes and quoted by a handler's
//! error appear in none of the bytes that leave the process — PostgreSQL rows (the
//! JSON and every filter column), NATS JetStream messages, HTTP request bodies, and
//! the Console sink's output.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use audit::Auditor;
use audit::dispatch::with_dispatch;
use audit::sinks::{Http, Nats};
use audit::store::Postgres;
use audit_distributed_tests::{delete_stream, nats_url, pg_url};
use audit_support_crate::{Account, SignIn, sign_in_quoting, update_account};
use futures_util::StreamExt;

fn secret(rng: &mut fastrand::Rng) -> String {
    (0..rng.usize(12..30))
        .map(|_| {
            char::from(b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[rng.usize(..56)])
        })
        .collect()
}

#[test]
fn secrets_reach_no_service() {
    let tag = std::process::id();
    let (schema, stream, prefix) = (
        format!("audit_redact_{tag}"),
        format!("AUDIT_REDACT_{tag}"),
        format!("audit_redact_{tag}"),
    );
    // An HTTP collector that keeps every body.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let bodies = Arc::new(Mutex::new(String::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            kept.lock().unwrap().push_str(&body);
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });
    // What the Console sink prints, line for line.
    let console = Arc::new(Mutex::new(String::new()));
    let printed = console.clone();
    let auditor = Auditor::builder()
        .sink(
            Postgres::options()
                .schema(&schema)
                .connect(&pg_url())
                .unwrap(),
        )
        .sink(
            Nats::options()
                .stream(&stream)
                .subject_prefix(&prefix)
                .connect(&nats_url())
                .unwrap(),
        )
        .sink(Http::options().build(format!("http://127.0.0.1:{port}/audit")))
        .sink(audit::sinks::Listener::new(
            "console",
            move |r: &audit::Record, name: &str| {
                let line = audit::sinks::Console::human_line(r, name);
                printed.lock().unwrap().push_str(&line);
            },
        ))
        .build()
        .unwrap();

    let mut rng = fastrand::Rng::with_seed(0x0bad_5eed);
    let mut secrets = Vec::new();
    with_dispatch(Arc::new(auditor.clone()), || {
        for i in 0..20 {
            let (a, b, password) = (secret(&mut rng), secret(&mut rng), secret(&mut rng));
            let extra = serde_json::json!({ "Api-Key": a, "nested": [{ "refreshToken": b }] });
            let s = SignIn {
                login: format!("user-{i}"),
                ip: None,
                password: password.clone(),
                extra,
            };
            let _ = sign_in_quoting(&s);
            let (token, card) = (secret(&mut rng), secret(&mut rng));
            let mut account = Account {
                id: i,
                plan: "free".into(),
                api_token: secret(&mut rng),
                card_number: secret(&mut rng),
                settings: serde_json::json!({ "PASSWORD": password }),
            };
            secrets.extend([a, b, password, token.clone(), card.clone()]);
            secrets.extend([account.api_token.clone(), account.card_number.clone()]);
            let _ = update_account(&mut account, "declined", &token, &card);
        }
    });
    assert!(auditor.flush());
    let report = auditor.shutdown();
    assert!(report.is_clean(), "{report}");

    let mut out = bodies.lock().unwrap().clone();
    out.push_str(&console.lock().unwrap());
    let mut pg = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    for row in pg
        .query(
            &format!("SELECT t::text FROM {schema}.audit_records t"),
            &[],
        )
        .unwrap()
    {
        out.push_str(row.get::<_, &str>(0));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
        let consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream(&stream)
            .await
            .unwrap()
            .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
            .await
            .unwrap();
        let mut messages = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let mut n = 0;
        while let Some(m) = messages.next().await {
            out.push_str(&String::from_utf8_lossy(&m.unwrap().payload));
            n += 1;
        }
        assert_eq!(n, 40, "every record reached the stream");
    });
    let _ = pg.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    delete_stream(&stream);

    assert!(
        out.contains("wrong password [REDACTED] for user-3"),
        "errors kept, scrubbed"
    );
    assert!(out.contains("card [REDACTED] was declined"));
    for s in &secrets {
        assert!(!out.contains(s.as_str()), "secret {s:?} left the process");
    }
}
