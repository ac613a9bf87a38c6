//! Nothing to export: this package holds the tests of the PostgreSQL store and the
//! NATS JetStream path (`tests/`), which need the facade's `postgres` and `nats`
//! features and the real servers.
