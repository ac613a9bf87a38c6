//! The tests of the PostgreSQL store and the NATS JetStream path (`tests/`) and their
//! benchmark (`benches/`), which need the facade's `postgres` and `nats` features and
//! the real servers. What they share lives here: where the servers are, and the
//! clean-up of a test stream.

/// The PostgreSQL server of the tests: `AUDIT_TEST_POSTGRES`, or the machine's
/// (`postgres://postgres@127.0.0.1:5432/test`).
pub fn pg_url() -> String {
    std::env::var("AUDIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A superuser session on [`pg_url`]; an unreachable server fails the test.
pub fn pg_admin() -> postgres::Client {
    postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is unreachable ({e}); start it (see .ci/run)",
            pg_url()
        )
    })
}

/// The NATS server of the tests: `AUDIT_TEST_NATS`, or `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("AUDIT_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Runs `f` with a JetStream context on [`nats_url`], on a runtime of its own.
fn jetstream<T>(f: impl AsyncFnOnce(async_nats::jetstream::Context) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    rt.block_on(async {
        let client = async_nats::connect(nats_url())
            .await
            .expect("the NATS server answers");
        f(async_nats::jetstream::new(client)).await
    })
}

/// Deletes a JetStream stream a test or benchmark created (absent: nothing to do).
///
/// A stream the tests never delete is made first: when an account's last stream
/// goes, the server removes its store directory, and a stream another test
/// creates at that moment fails (`could not create storage directory`, a 500
/// error, seen once in session 45).
pub fn delete_stream(stream: &str) {
    jetstream(async |js| {
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "AUDIT_TESTS_KEEP".into(),
            subjects: vec!["audit-tests-keep".into()],
            ..Default::default()
        })
        .await
        .expect("the server keeps a stream");
        let _ = js.delete_stream(stream).await;
    })
}

/// How many messages `stream` holds.
pub fn stream_messages(stream: &str) -> u64 {
    jetstream(async |js| {
        let mut stream = js.get_stream(stream).await.expect("the stream exists");
        stream
            .info()
            .await
            .expect("the stream answers")
            .state
            .messages
    })
}

/// A certificate authority, and a server certificate for `localhost` / 127.0.0.1 it
/// signed: (the authority's PEM, the server's certificate, the server's key).
pub fn make_certs(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |name: &str| dir.join(name);
    let ext = p("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=audit test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}
