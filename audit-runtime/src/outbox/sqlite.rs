//! The outbox in a SQLite database: rows written in a `rusqlite::Transaction`, read
//! by [`SqliteOutbox`]. SQLite has one writer at a time, so relays take turns and
//! rows arrive in write order.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Deliver, NewRow, OutboxError, OutboxRow, OutboxSource, Transaction, db_error, parse_head,
    tables,
};

const INSTALL: &str = "audit::outbox::sqlite::install(&conn)";

fn error(e: rusqlite::Error) -> OutboxError {
    db_error(e, INSTALL)
}

/// Creates the outbox tables in `conn`'s database if they are missing.
pub fn install(conn: &Connection) -> Result<(), OutboxError> {
    conn.execute_batch(&tables("INTEGER PRIMARY KEY AUTOINCREMENT", "text"))
        .map_err(error)
}

impl Transaction for rusqlite::Transaction<'_> {
    fn insert_rows(&mut self, rows: &[NewRow]) -> Result<(), OutboxError> {
        let mut stmt = self
            .prepare_cached(super::INSERT_ROW_SQLITE)
            .map_err(error)?;
        for r in rows {
            stmt.execute(params![
                r.id.hyphenated().to_string(),
                r.producer,
                r.json,
                r.created_ns
            ])
            .map_err(error)?;
        }
        Ok(())
    }
}

/// A relay's view of a SQLite outbox.
pub struct SqliteOutbox {
    conn: Connection,
}

impl SqliteOutbox {
    /// Opens the application's database at `path` (installing the tables if missing);
    /// waits up to 5 s for the application's writers.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OutboxError> {
        let conn = Connection::open(path).map_err(error)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(error)?;
        install(&conn)?;
        Ok(SqliteOutbox { conn })
    }

    /// Rows waiting in the outbox.
    pub fn pending(&self) -> Result<u64, OutboxError> {
        self.conn
            .query_row("SELECT count(*) FROM audit_outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(error)
    }
}

impl OutboxSource for SqliteOutbox {
    fn relay_batch(
        &mut self,
        relay: &str,
        n: usize,
        deliver: &mut Deliver<'_>,
    ) -> Result<usize, OutboxError> {
        // The write lock first: no other relay reads these rows until this commits.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let rows: Vec<OutboxRow> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, producer, record FROM audit_outbox ORDER BY seq LIMIT ?1",
                )
                .map_err(error)?;
            stmt.query_map([n as i64], |r| {
                Ok(OutboxRow {
                    seq: r.get(0)?,
                    producer: r.get(1)?,
                    json: r.get(2)?,
                })
            })
            .map_err(error)?
            .collect::<Result<_, _>>()
            .map_err(error)?
        };
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        let head: Option<String> = tx
            .query_row(
                "SELECT head FROM audit_outbox_relay WHERE name = ?1",
                [relay],
                |r| r.get(0),
            )
            .optional()
            .map_err(error)?
            .flatten();
        let head = parse_head(head)?;
        let new_head = deliver(head, &rows)?;
        tx.execute("DELETE FROM audit_outbox WHERE seq <= ?1", [last])
            .map_err(error)?;
        tx.execute(
            "INSERT INTO audit_outbox_relay (name, head, delivered) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET head = excluded.head,
                 delivered = audit_outbox_relay.delivered + excluded.delivered",
            params![
                relay,
                new_head.map(|h| h.as_str().to_owned()),
                rows.len() as i64
            ],
        )
        .map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(rows.len())
    }
}
