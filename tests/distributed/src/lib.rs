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

/// The NATS server of the tests: `AUDIT_TEST_NATS`, or `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("AUDIT_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Deletes a JetStream stream a test or benchmark created (absent: nothing to do).
pub fn delete_stream(stream: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    rt.block_on(async {
        let client = async_nats::connect(nats_url())
            .await
            .expect("the NATS server answers");
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    });
}
