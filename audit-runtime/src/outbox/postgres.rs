//! The outbox in a PostgreSQL database: rows written in a `postgres::Transaction`,
//! read by [`PostgresOutbox`]. Relays in parallel each take the rows of a producer
//! no other relay holds (a transaction-level advisory lock per producer, rows
//! `FOR UPDATE SKIP LOCKED`), so every producer's rows arrive in write order.

use postgres::types::Type;
use postgres::{Client, NoTls};

use super::{
    Deliver, NewRow, OutboxError, OutboxRow, OutboxSource, Transaction, db_error, parse_head,
    tables,
};

const INSTALL: &str = "audit::outbox::postgres::install(&mut client)";

/// The advisory lock class of a producer's rows (the store's locks use 7317001-2).
const PRODUCER_LOCK: i32 = 7_317_003;

fn error(e: postgres::Error) -> OutboxError {
    // The server's message, not only "db error".
    let m = match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    };
    db_error(m, INSTALL)
}

/// Creates the outbox tables in the client's current schema if they are missing.
pub fn install(client: &mut Client) -> Result<(), OutboxError> {
    client
        .batch_execute(&tables("bigserial PRIMARY KEY", "uuid"))
        .map_err(error)
}

/// The insert of a batch of rows: one statement, typed parameters (one round trip).
const INSERT: &str = "INSERT INTO audit_outbox (id, producer, record, created_ns)
     SELECT * FROM unnest($1, $2, $3, $4)";

/// The columns of `rows`, as [`INSERT`]'s parameters.
struct Columns<'a> {
    ids: Vec<uuid::Uuid>,
    producers: Vec<&'a str>,
    records: Vec<&'a str>,
    created: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [NewRow]) -> Self {
        Columns {
            ids: rows.iter().map(|r| r.id).collect(),
            producers: rows.iter().map(|r| r.producer.as_str()).collect(),
            records: rows.iter().map(|r| r.json.as_str()).collect(),
            created: rows.iter().map(|r| r.created_ns).collect(),
        }
    }

    fn params(&self) -> [(&(dyn postgres::types::ToSql + Sync), Type); 4] {
        [
            (&self.ids, Type::UUID_ARRAY),
            (&self.producers, Type::TEXT_ARRAY),
            (&self.records, Type::TEXT_ARRAY),
            (&self.created, Type::INT8_ARRAY),
        ]
    }
}

impl super::Scope {
    /// [`super::Scope::write`] into a `tokio_postgres` transaction, for async code.
    pub async fn write_async(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<usize, OutboxError> {
        let rows = self.take_rows();
        if rows.is_empty() {
            return Ok(0);
        }
        let columns = Columns::of(&rows);
        let done = tx.execute_typed(INSERT, &columns.params()).await;
        drop(columns);
        match done {
            Ok(_) => Ok(rows.len()),
            Err(e) => {
                // Kept for another transaction, as `write` keeps them.
                self.restore_rows(rows);
                Err(error(e))
            }
        }
    }
}

impl Transaction for postgres::Transaction<'_> {
    fn insert_rows(&mut self, rows: &[NewRow]) -> Result<(), OutboxError> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns = Columns::of(rows);
        self.execute_typed(INSERT, &columns.params())
            .map_err(error)?;
        Ok(())
    }
}

/// A relay's view of a PostgreSQL outbox.
pub struct PostgresOutbox {
    client: Client,
}

impl PostgresOutbox {
    /// Connects to the application's database (`postgres://…`, no TLS) and installs
    /// the tables if missing.
    pub fn connect(url: &str) -> Result<Self, OutboxError> {
        Self::from_client(Client::connect(url, NoTls).map_err(error)?)
    }

    /// A relay over an open client (with TLS, a schema on its search path…).
    pub fn from_client(mut client: Client) -> Result<Self, OutboxError> {
        install(&mut client)?;
        Ok(PostgresOutbox { client })
    }

    /// Rows waiting in the outbox.
    pub fn pending(&mut self) -> Result<u64, OutboxError> {
        let n: i64 = self
            .client
            .query_one("SELECT count(*) FROM audit_outbox", &[])
            .map_err(error)?
            .get(0);
        Ok(n as u64)
    }
}

impl OutboxSource for PostgresOutbox {
    fn relay_batch(
        &mut self,
        relay: &str,
        n: usize,
        deliver: &mut Deliver<'_>,
    ) -> Result<usize, OutboxError> {
        let mut tx = self.client.transaction().map_err(error)?;
        // Producers with committed rows, the longest waiting first: one probe of
        // the `(producer, seq)` index per producer (a loose index scan), not a
        // scan of the waiting rows.
        let producers: Vec<String> = tx
            .query(
                "WITH RECURSIVE p(producer) AS (
                     SELECT min(producer) FROM audit_outbox
                     UNION ALL
                     SELECT (SELECT min(producer) FROM audit_outbox WHERE producer > p.producer)
                     FROM p WHERE p.producer IS NOT NULL
                 )
                 SELECT producer FROM p WHERE producer IS NOT NULL
                 ORDER BY (SELECT min(seq) FROM audit_outbox o WHERE o.producer = p.producer)
                 LIMIT 100",
                &[],
            )
            .map_err(error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for producer in producers {
            let mine: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1, hashtext($2))",
                    &[&PRODUCER_LOCK, &producer],
                )
                .map_err(error)?
                .get(0);
            if !mine {
                continue; // another relay is delivering this producer's rows
            }
            let rows: Vec<OutboxRow> = tx
                .query(
                    "SELECT seq, producer, record FROM audit_outbox WHERE producer = $1
                     ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&producer, &(n as i64)],
                )
                .map_err(error)?
                .iter()
                .map(|r| OutboxRow {
                    seq: r.get(0),
                    producer: r.get(1),
                    json: r.get(2),
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            tx.execute(
                "INSERT INTO audit_outbox_relay (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&relay],
            )
            .map_err(error)?;
            let head: Option<String> = tx
                .query_one(
                    "SELECT head FROM audit_outbox_relay WHERE name = $1 FOR UPDATE",
                    &[&relay],
                )
                .map_err(error)?
                .get(0);
            let new_head = deliver(parse_head(head)?, &rows)?;
            let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
            tx.execute("DELETE FROM audit_outbox WHERE seq = ANY($1)", &[&seqs])
                .map_err(error)?;
            tx.execute(
                "UPDATE audit_outbox_relay SET head = $2, delivered = delivered + $3 WHERE name = $1",
                &[&relay, &new_head.map(|h| h.as_str().to_owned()), &(rows.len() as i64)],
            )
            .map_err(error)?;
            tx.commit().map_err(error)?;
            return Ok(rows.len());
        }
        Ok(0)
    }
}
