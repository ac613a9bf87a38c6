//! The SQLite store's schema, as numbered migrations (`PRAGMA user_version` holds the
//! number applied). A migration is never edited once released: changes are new steps.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StoreError;
use crate::store::stored::QUERY_INDEXES;

use super::db_error;

/// Each step brings the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the records table (one row per record: the JSON as written, the columns
    // queries filter on, the record hash and the store's link), the purge anchor,
    // and the triggers that make both append-only.
    r#"
    CREATE TABLE audit_records (
        seq              INTEGER PRIMARY KEY,
        id               TEXT    NOT NULL UNIQUE,
        time_ns          INTEGER NOT NULL,
        event            TEXT    NOT NULL,
        code             INTEGER NOT NULL,
        category         TEXT    NOT NULL,
        level            TEXT    NOT NULL,
        outcome          TEXT    NOT NULL,
        actor_id         TEXT,
        actor_email      TEXT,
        tenant           TEXT,
        entity_type      TEXT,
        entity_type_code INTEGER,
        entity_id        TEXT,
        description      TEXT    NOT NULL,
        hash             TEXT    NOT NULL,
        link             TEXT    NOT NULL,
        record           TEXT    NOT NULL
    );
    CREATE TABLE audit_anchor (
        seq       INTEGER NOT NULL,
        link      TEXT    NOT NULL,
        purged    INTEGER NOT NULL,
        before_ns INTEGER NOT NULL,
        at_ns     INTEGER NOT NULL
    );
    CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- A row exists here only inside a purge's own transaction.
    CREATE TABLE audit_purging (active INTEGER NOT NULL);
    CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: rows cannot be updated'); END;
    CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
    WHEN NOT EXISTS (SELECT 1 FROM audit_purging)
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: rows are removed only by a purge'); END;
    CREATE TRIGGER audit_anchor_no_update BEFORE UPDATE ON audit_anchor
    BEGIN SELECT RAISE(ABORT, 'audit_anchor is append-only'); END;
    CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor
    BEGIN SELECT RAISE(ABORT, 'audit_anchor is append-only'); END;
    "#,
    // 2: the indexes of the query model.
    QUERY_INDEXES,
    // 3: tenant purges erase rows in place. A row may be updated only inside a
    // purge's transaction, only once, and only into the erased shape: the record
    // becomes JSON `null`, the personal columns empty, and the position, hash, link
    // and catalog columns stay as written.
    r#"
    ALTER TABLE audit_records ADD COLUMN erased_ns INTEGER;
    DROP TRIGGER IF EXISTS audit_records_no_update;
    CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
    WHEN NOT EXISTS (SELECT 1 FROM audit_purging)
      OR OLD.erased_ns IS NOT NULL OR NEW.erased_ns IS NULL
      OR NEW.seq IS NOT OLD.seq OR NEW.id IS NOT OLD.id OR NEW.time_ns IS NOT OLD.time_ns
      OR NEW.event IS NOT OLD.event OR NEW.code IS NOT OLD.code
      OR NEW.category IS NOT OLD.category OR NEW.level IS NOT OLD.level
      OR NEW.outcome IS NOT OLD.outcome OR NEW.hash IS NOT OLD.hash
      OR NEW.link IS NOT OLD.link OR NEW.record IS NOT 'null'
      OR NEW.actor_id IS NOT NULL OR NEW.actor_email IS NOT NULL OR NEW.tenant IS NOT NULL
      OR NEW.entity_type IS NOT NULL OR NEW.entity_type_code IS NOT NULL
      OR NEW.entity_id IS NOT NULL OR NEW.description IS NOT ''
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: rows cannot be updated (a tenant purge only erases them)'); END;
    "#,
    // 4: segments. Rows go to the newest of a list of tables of the same shape
    // (`audit_records` is segment 0; `segment_ddl` makes the others); a full one is
    // sealed with the bounds of what it holds, which let reads skip it and purges
    // drop it whole.
    r#"
    CREATE TABLE audit_segments (
        n         INTEGER PRIMARY KEY,
        name      TEXT    NOT NULL UNIQUE,
        first_seq INTEGER NOT NULL,
        last_seq  INTEGER,
        min_ns    INTEGER,
        max_ns    INTEGER,
        min_id    TEXT,
        max_id    TEXT
    );
    INSERT INTO audit_segments (n, name, first_seq)
    VALUES (0, 'audit_records', coalesce((SELECT min(seq) FROM audit_records), 1));
    "#,
    // 5: compressed records. A row's `record` is the JSON text or a zstd frame made
    // with one of these dictionaries (named by the zstd id in the frame's header);
    // rows from `first_seq` on are written with dictionary `n` or a newer one. A
    // dictionary is removed only by a purge, once no row written with it is left.
    r#"
    CREATE TABLE audit_dictionaries (
        n          INTEGER PRIMARY KEY,
        zstd_id    INTEGER NOT NULL UNIQUE,
        dictionary BLOB    NOT NULL,
        first_seq  INTEGER NOT NULL,
        made_ns    INTEGER NOT NULL
    );
    CREATE TRIGGER audit_dictionaries_no_update BEFORE UPDATE ON audit_dictionaries
    BEGIN SELECT RAISE(ABORT, 'audit_dictionaries is append-only'); END;
    CREATE TRIGGER audit_dictionaries_no_delete BEFORE DELETE ON audit_dictionaries
    WHEN NOT EXISTS (SELECT 1 FROM audit_purging)
    BEGIN SELECT RAISE(ABORT, 'audit_dictionaries is append-only: a dictionary is removed only by a purge'); END;
    "#,
    // 6: random-key indexes built at seal. A segment made from now on is written
    // with `OPEN_INDEXES`: those whose keys have few values (tenant, event) and,
    // instead of the time index, one over time and the random keys (actor id,
    // email, entity) that grows at its end; its seal builds the indexes on random
    // keys and the time index in sorted bulk (`SEAL_INDEXES`). `keyed` says
    // whether a segment has them: every segment made before this step has.
    r#"
    ALTER TABLE audit_segments ADD COLUMN keyed INTEGER NOT NULL DEFAULT 1;
    "#,
];

/// The schema version from which the store is a list of segments.
pub(super) const SEGMENTS: u32 = 4;

/// The schema version from which records may be stored compressed.
pub(super) const DICTIONARIES: u32 = 5;

/// The schema version from which a segment gets its random-key indexes when sealed.
pub(super) const KEYED: u32 = 6;

/// The indexes a segment is written with from schema [`KEYED`] on (as
/// `audit_records`' names). Few values (tenant, event) or a key that grows with the
/// writes (time) keep a commit to a few of their pages; a random key (actor id,
/// email, entity) would dirty a page per distinct key per commit. So the random
/// keys are only columns of the `tail` index, ordered by time: a page filtered on
/// them walks it newest first (or oldest), testing the keys in the index and
/// reading a row only when they match — about a third of a table scan's time.
pub(super) const OPEN_INDEXES: &str = r#"
    CREATE INDEX audit_records_tail   ON audit_records (time_ns, actor_id, actor_email, entity_type, entity_id);
    CREATE INDEX audit_records_tenant ON audit_records (tenant, time_ns) WHERE tenant IS NOT NULL;
    CREATE INDEX audit_records_event  ON audit_records (event, time_ns);
"#;

/// What a seal builds, in sorted bulk, on a segment written with
/// [`OPEN_INDEXES`]: the query indexes it lacks, in place of its `tail` index (a
/// segment made before schema [`KEYED`] has them already).
pub(super) const SEAL_INDEXES: &str = r#"
    CREATE INDEX IF NOT EXISTS audit_records_time   ON audit_records (time_ns);
    CREATE INDEX IF NOT EXISTS audit_records_actor  ON audit_records (actor_id, time_ns) WHERE actor_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_records_email  ON audit_records (actor_email, time_ns) WHERE actor_email IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_records_entity ON audit_records (entity_type, entity_id, time_ns) WHERE entity_type IS NOT NULL;
    DROP INDEX IF EXISTS audit_records_tail;
"#;

/// A segment table after the first (`{t}` is its name): `audit_records`' columns,
/// append-only triggers and query indexes as migrations 1-3 left them (`keyed`),
/// or with [`OPEN_INDEXES`] instead.
pub(super) fn segment_ddl(t: &str, keyed: bool) -> String {
    let indexes = match keyed {
        true => QUERY_INDEXES,
        false => OPEN_INDEXES,
    }
    .replace("audit_records", t);
    format!(
        r#"
    CREATE TABLE {t} (
        seq              INTEGER PRIMARY KEY,
        id               TEXT    NOT NULL UNIQUE,
        time_ns          INTEGER NOT NULL,
        event            TEXT    NOT NULL,
        code             INTEGER NOT NULL,
        category         TEXT    NOT NULL,
        level            TEXT    NOT NULL,
        outcome          TEXT    NOT NULL,
        actor_id         TEXT,
        actor_email      TEXT,
        tenant           TEXT,
        entity_type      TEXT,
        entity_type_code INTEGER,
        entity_id        TEXT,
        description      TEXT    NOT NULL,
        hash             TEXT    NOT NULL,
        link             TEXT    NOT NULL,
        record           TEXT    NOT NULL,
        erased_ns        INTEGER
    );
    CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t}
    WHEN NOT EXISTS (SELECT 1 FROM audit_purging)
    BEGIN SELECT RAISE(ABORT, '{t} is append-only: rows are removed only by a purge'); END;
    CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t}
    WHEN NOT EXISTS (SELECT 1 FROM audit_purging)
      OR OLD.erased_ns IS NOT NULL OR NEW.erased_ns IS NULL
      OR NEW.seq IS NOT OLD.seq OR NEW.id IS NOT OLD.id OR NEW.time_ns IS NOT OLD.time_ns
      OR NEW.event IS NOT OLD.event OR NEW.code IS NOT OLD.code
      OR NEW.category IS NOT OLD.category OR NEW.level IS NOT OLD.level
      OR NEW.outcome IS NOT OLD.outcome OR NEW.hash IS NOT OLD.hash
      OR NEW.link IS NOT OLD.link OR NEW.record IS NOT 'null'
      OR NEW.actor_id IS NOT NULL OR NEW.actor_email IS NOT NULL OR NEW.tenant IS NOT NULL
      OR NEW.entity_type IS NOT NULL OR NEW.entity_type_code IS NOT NULL
      OR NEW.entity_id IS NOT NULL OR NEW.description IS NOT ''
    BEGIN SELECT RAISE(ABORT, '{t} is append-only: rows cannot be updated (a tenant purge only erases them)'); END;
    {indexes}
    "#
    )
}

/// The newest schema version this build knows.
pub(super) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Applies the missing migrations up to `target`, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_error)?;
    if found > VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: VERSION,
        });
    }
    for version in found..target.min(VERSION) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        // Another process may have migrated meanwhile.
        let now: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_error)?;
        if now > version {
            continue;
        }
        tx.execute_batch(MIGRATIONS[version as usize])
            .map_err(db_error)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `CREATE INDEX` statements of `sql`, spaced and worded alike.
    fn creates(sql: &str) -> Vec<String> {
        let mut out: Vec<String> = sql
            .split(';')
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .map(|s| s.replace("IF NOT EXISTS ", ""))
            .filter(|s| s.starts_with("CREATE INDEX"))
            .collect();
        out.sort();
        out
    }

    /// A sealed segment has the query indexes: the open one's but its tail, and
    /// what the seal builds, which drops the tail.
    #[test]
    fn a_seal_completes_the_query_indexes() {
        let (open, seal) = (creates(OPEN_INDEXES), creates(SEAL_INDEXES));
        let mut sealed: Vec<String> = open
            .into_iter()
            .filter(|s| !s.contains("audit_records_tail"))
            .chain(seal)
            .collect();
        sealed.sort();
        assert_eq!(sealed, creates(QUERY_INDEXES));
        assert!(SEAL_INDEXES.contains("DROP INDEX IF EXISTS audit_records_tail;"));
    }
}
