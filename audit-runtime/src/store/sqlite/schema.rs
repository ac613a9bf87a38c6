//! The SQLite store's schema, as numbered migrations (`PRAGMA user_version` holds the
//! number applied). A migration is never edited once released: changes are new steps.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

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
    // 7: one open-segment index. A segment made from now on is written with the
    // `tail` index of `OPEN_INDEXES` only, which holds the tenant and the event
    // too; its seal builds their indexes with the others (`SEAL_INDEXES`). A
    // first segment still open is given that layout by `open_first_segment`, in
    // this step's transaction.
    "-- `open_first_segment`, run in this step's transaction, is all of it.",
    // 8: postings at seal. A segment sealed from now on keeps its `tail` index
    // (its time index) and gets, instead of the indexes of `SEAL_INDEXES`, its
    // postings: `{segment}_keys`, made after the seal (`later`), and `keyed = 2`;
    // a sealed segment waiting for them keeps `keyed = 0`.
    // Segments sealed before keep their indexes.
    "-- no statement: each sealed segment's postings table is made after its seal.",
    // 9: one table of postings. A segment's postings are rows of `audit_postings`
    // under its number (`keyed = 3`), not a table of their own: a new table
    // changed the schema, which every other connection then parsed again, and
    // that grew with the number of segments (docs/STORAGE.md). `share_postings`
    // moves schema 8's tables there, in this step's transaction.
    super::postings::SHARED_TABLE,
];

/// The schema version from which the store is a list of segments.
pub(super) const SEGMENTS: u32 = 4;

/// The schema version from which records may be stored compressed.
pub(super) const DICTIONARIES: u32 = 5;

/// The schema version from which a segment gets its random-key indexes when sealed.
pub(super) const KEYED: u32 = 6;

/// The schema version from which an open segment has one index, [`OPEN_INDEXES`].
pub(super) const ONE_OPEN_INDEX: u32 = 7;

/// The schema version from which a sealed segment has postings instead of the
/// indexes of [`SEAL_INDEXES`].
pub(super) const POSTINGS: u32 = 8;

/// The schema version from which every sealed segment's postings are rows of one
/// table, `audit_postings`.
pub(super) const SHARED_POSTINGS: u32 = 9;

/// The one index an open segment is written with from schema [`ONE_OPEN_INDEX`]
/// on (as `audit_records`' names): time first, then every column a page filters
/// on. Its key grows with the writes, so a commit dirties its last pages only; an
/// index on a random key (actor id, email, entity) would dirty a page per distinct
/// key per commit, and one on few values (tenant, event) a page per value, each
/// insert in the middle of its tree. A page filtered on any of them walks this
/// index newest first (or oldest), testing the columns in it and reading a row
/// only when they match: a segment holds at most `segment_rows` rows (~2 ms for
/// 20 000).
pub(super) const OPEN_INDEXES: &str = r#"
    CREATE INDEX audit_records_tail ON audit_records (time_ns, actor_id, actor_email, entity_type, entity_id, tenant, event);
"#;

/// The indexes an open segment was written with in schema [`KEYED`] (6): the
/// tenant and event indexes beside a `tail` without those columns.
const OPEN_INDEXES_6: &str = r#"
    CREATE INDEX audit_records_tail   ON audit_records (time_ns, actor_id, actor_email, entity_type, entity_id);
    CREATE INDEX audit_records_tenant ON audit_records (tenant, time_ns) WHERE tenant IS NOT NULL;
    CREATE INDEX audit_records_event  ON audit_records (event, time_ns);
"#;

/// What a seal builds, in sorted bulk, on a segment written with an open layout
/// ([`OPEN_INDEXES`], or schema 6's, which has the tenant and event indexes
/// already): the query indexes it lacks, in place of its `tail` index (a segment
/// made before schema [`KEYED`] has them all).
pub(super) const SEAL_INDEXES: &str = r#"
    CREATE INDEX IF NOT EXISTS audit_records_time   ON audit_records (time_ns);
    CREATE INDEX IF NOT EXISTS audit_records_actor  ON audit_records (actor_id, time_ns) WHERE actor_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_records_email  ON audit_records (actor_email, time_ns) WHERE actor_email IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_records_tenant ON audit_records (tenant, time_ns) WHERE tenant IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_records_entity ON audit_records (entity_type, entity_id, time_ns) WHERE entity_type IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_records_event  ON audit_records (event, time_ns);
    DROP INDEX IF EXISTS audit_records_tail;
"#;

/// The query indexes of a segment made in schema `schema`, as `audit_records`'
/// names: all of them before [`KEYED`], else an open layout.
fn made_with(schema: u32) -> &'static str {
    match schema {
        s if s < KEYED => QUERY_INDEXES,
        s if s < ONE_OPEN_INDEX => OPEN_INDEXES_6,
        _ => OPEN_INDEXES,
    }
}

/// A segment table after the first (`{t}` is its name) in schema `schema`:
/// `audit_records`' columns and append-only triggers as migrations 1-3 left them,
/// and the query indexes a segment is made with ([`made_with`]).
pub(super) fn segment_ddl(t: &str, schema: u32) -> String {
    let indexes = made_with(schema).replace("audit_records", t);
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
        if version + 1 == ONE_OPEN_INDEX {
            open_first_segment(&tx).map_err(db_error)?;
        }
        if version + 1 == SHARED_POSTINGS {
            share_postings(&tx).map_err(db_error)?;
        }
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
    }
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_error)
}

/// Gives the first segment (`audit_records`, made with every query index by
/// migrations 1-2), while it is still open, the open layout of schema
/// [`ONE_OPEN_INDEX`]: a new store's first rows are then written like every other
/// segment's, and its seal builds the rest.
fn open_first_segment(tx: &Connection) -> rusqlite::Result<()> {
    let open: Option<bool> = tx
        .query_row(
            "SELECT last_seq IS NULL FROM audit_segments WHERE n = 0",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if open != Some(true) {
        return Ok(());
    }
    let drops: String = creates(QUERY_INDEXES)
        .iter()
        .filter_map(|create| create.split_whitespace().nth(2))
        .map(|name| format!("DROP INDEX IF EXISTS {name};\n"))
        .collect();
    tx.execute_batch(&format!(
        "{drops}{OPEN_INDEXES}UPDATE audit_segments SET keyed = 0 WHERE n = 0;"
    ))
}

/// Moves the postings of every segment sealed in schema 8 (a table each,
/// `{segment}_keys`) into `audit_postings`, under the segment's number, and drops
/// those tables: their blocks are copied as they are (`check_indexes` still makes
/// them again from the rows).
fn share_postings(tx: &Connection) -> rusqlite::Result<()> {
    let segments: Vec<(i64, String)> = tx
        .prepare("SELECT n, name FROM audit_segments WHERE keyed = 2 ORDER BY n")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (n, t) in segments {
        tx.execute_batch(&format!(
            "INSERT INTO audit_postings (segment, kind, key, block) \
                 SELECT {n}, kind, key, block FROM {t}_keys; \
             DROP TABLE {t}_keys; \
             UPDATE audit_segments SET keyed = 3 WHERE n = {n};"
        ))?;
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A sealed segment has the query indexes, whichever open layout it was
    /// written with: the open one's but its tail, and what the seal builds (each
    /// once: `IF NOT EXISTS`), which drops the tail.
    #[test]
    fn a_seal_completes_the_query_indexes() {
        let all: BTreeSet<String> = creates(QUERY_INDEXES).into_iter().collect();
        for open in [OPEN_INDEXES, OPEN_INDEXES_6] {
            let sealed: BTreeSet<String> = creates(open)
                .into_iter()
                .filter(|s| !s.contains("audit_records_tail"))
                .chain(creates(SEAL_INDEXES))
                .collect();
            assert_eq!(sealed, all);
        }
        assert!(SEAL_INDEXES.contains("DROP INDEX IF EXISTS audit_records_tail;"));
        assert_eq!(creates(OPEN_INDEXES).len(), 1, "one open index");
    }

    /// A new store's first segment is open with the open layout; one whose first
    /// segment was sealed in schema 6 keeps every index.
    #[test]
    fn a_new_store_writes_its_first_segment_with_one_index() {
        let indexes = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'index' \
                     AND tbl_name = 'audit_records' AND sql IS NOT NULL ORDER BY name",
                )
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let keyed = |conn: &Connection| -> bool {
            conn.query_row("SELECT keyed FROM audit_segments WHERE n = 0", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let mut fresh = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut fresh, VERSION).unwrap(), VERSION);
        assert_eq!(indexes(&fresh), ["audit_records_tail"]);
        assert!(!keyed(&fresh));

        let mut sealed = Connection::open_in_memory().unwrap();
        migrate(&mut sealed, KEYED).unwrap();
        sealed
            .execute("UPDATE audit_segments SET last_seq = 0 WHERE n = 0", [])
            .unwrap();
        migrate(&mut sealed, VERSION).unwrap();
        assert_eq!(indexes(&sealed).len(), 6, "{:?}", indexes(&sealed));
        assert!(keyed(&sealed));
    }
}
