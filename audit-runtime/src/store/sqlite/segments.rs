//! The SQLite store as a list of segments: tables of the same shape, each holding a
//! run of consecutive positions (`seq`), oldest first. Rows go to the newest one;
//! once it holds [`SqliteOptions::segment_rows`](super::SqliteOptions::segment_rows)
//! rows it is sealed — its bounds (last position, time range, id range) written to
//! `audit_segments` — and the next one is created. Indexes stay the size of one
//! segment, which keeps a commit's index pages few and hot; reads use the bounds to
//! stop early; purges drop whole segments. From schema 7 a segment is written
//! with one index, `tail`, ordered by time and holding every column a page
//! filters on (schema 6's had the tenant and event indexes beside it); an index
//! on a random key (actor, email, entity) would dirty a page per distinct key per
//! commit. From schema 8 the seal keeps the tail (the segment's time index) and
//! makes the segment's postings from it ([`super::postings`]); in schemas 6 and 7
//! it built the other query indexes in sorted bulk (`schema::SEAL_INDEXES`).
//!
//! The link chain does not care: it continues from one segment's last row to the
//! next one's first, and the verification walks the segments in order.

use std::cmp::Ordering;

use rusqlite::{Connection, OptionalExtension, params};

use super::postings::{Place, Postings};
use super::schema;
use crate::store::StoreError;
use crate::store::query::{Order, Placeholder, field_index_name, field_index_sql};

/// The default number of rows per segment (`cargo bench --bench store`, 1 M rows
/// in batches of 1 000; `BENCHMARKS.md`): pages of 50 under 5 ms at p99 (an
/// actor's or an entity's page walks the open segment's tail index: this size
/// bounds that walk; a sealed segment's reads its postings). Smaller segments
/// make more tables, and SQLite parses every table's schema when a connection
/// opens and after each seal (measured: 40 ms at 600 segments, 150 ms at
/// 1 500): see `docs/STORAGE.md`.
pub const DEFAULT_SEGMENT_ROWS: usize = 20_000;

/// One segment: its table and, once sealed, the bounds of what it holds.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    /// Its number (0: `audit_records`).
    pub n: i64,
    /// Its table.
    pub table: String,
    /// The first position it was made for.
    pub first_seq: i64,
    /// Its bounds, once sealed (the newest segment is open).
    pub sealed: Option<Sealed>,
    /// How its rows are found by key.
    pub layout: Layout,
}

/// How a segment's rows are found by key (`audit_segments.keyed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Only its tail index (0): the open segment from schema 6, with schema 6's
    /// tenant and event indexes beside it in that schema.
    Open,
    /// Every query index (1): a segment sealed before schema 8, or made before
    /// schema 6.
    Indexed,
    /// Its tail index and postings ([`super::postings`]): sealed from schema 8,
    /// with a table of its own (2) or, from schema 9, in the one table (3).
    Postings(Place),
}

impl Layout {
    fn of(keyed: i64) -> Layout {
        match keyed {
            0 => Layout::Open,
            2 => Layout::Postings(Place::Own),
            3 => Layout::Postings(Place::Shared),
            _ => Layout::Indexed,
        }
    }

    /// The value of `audit_segments.keyed`.
    pub(super) fn keyed(self) -> i64 {
        match self {
            Layout::Open => 0,
            Layout::Indexed => 1,
            Layout::Postings(Place::Own) => 2,
            Layout::Postings(Place::Shared) => 3,
        }
    }
}

impl Segment {
    /// Its postings, if it has them.
    pub(super) fn postings(&self) -> Option<Postings> {
        match self.layout {
            Layout::Postings(place) => Some(Postings::of(self.n, &self.table, place)),
            _ => None,
        }
    }

    /// Whether it is sealed and waits for its postings (schema 8: made off the
    /// writer, [`super::later`]); it is read through its tail index until then.
    pub(super) fn waits(&self) -> bool {
        self.sealed.is_some() && self.layout == Layout::Open
    }
}

/// Writes `blocks` as the postings of sealed segment `s` (made from its rows in
/// their current state), at `place`: it is read through them from then on, and
/// this is its layout.
pub(super) fn write_postings(
    conn: &Connection,
    s: &Segment,
    place: Place,
    blocks: super::postings::Blocks,
) -> rusqlite::Result<Layout> {
    super::postings::write(conn, &Postings::of(s.n, &s.table, place), blocks)?;
    let layout = Layout::Postings(place);
    conn.execute(
        "UPDATE audit_segments SET keyed = ?1 WHERE n = ?2",
        [layout.keyed(), s.n],
    )?;
    Ok(layout)
}

/// What a sealed segment holds: bounds that stay true as rows are erased or purged.
#[derive(Debug, Clone)]
pub(super) struct Sealed {
    /// Its last position.
    pub last_seq: i64,
    /// The oldest and newest record time (`i64::MAX`, `i64::MIN` when empty).
    pub min_ns: i64,
    pub max_ns: i64,
    /// The smallest and largest id, as stored (an empty range when empty).
    pub min_id: String,
    pub max_id: String,
}

impl Segment {
    /// Whether a row with this id may be in this segment.
    pub fn may_hold_id(&self, id: &str) -> bool {
        self.sealed
            .as_ref()
            .is_none_or(|s| s.min_id.as_str() <= id && id <= s.max_id.as_str())
    }

    /// Whether rows after position `after` may be in this segment.
    pub fn may_hold_after(&self, after: i64) -> bool {
        self.sealed.as_ref().is_none_or(|s| s.last_seq > after)
    }
}

/// The table of segment `n`.
pub(super) fn table_name(n: i64) -> String {
    match n {
        0 => "audit_records".into(),
        _ => format!("audit_segment_{n}"),
    }
}

/// The segments, oldest first (a store older than schema 4 is one open segment).
pub(super) fn list(conn: &Connection, schema: u32) -> Result<Vec<Segment>, rusqlite::Error> {
    if schema < schema::SEGMENTS {
        return Ok(vec![Segment {
            n: 0,
            table: table_name(0),
            first_seq: 1,
            sealed: None,
            layout: Layout::Indexed,
        }]);
    }
    let keyed = match schema >= schema::KEYED {
        true => "keyed",
        false => "1",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT n, name, first_seq, last_seq, min_ns, max_ns, min_id, max_id, {keyed} \
         FROM audit_segments ORDER BY n"
    ))?;
    let rows = stmt.query_map([], |r| {
        let last_seq: Option<i64> = r.get(3)?;
        Ok(Segment {
            n: r.get(0)?,
            table: r.get(1)?,
            first_seq: r.get(2)?,
            layout: Layout::of(r.get(8)?),
            sealed: match last_seq {
                None => None,
                Some(last_seq) => Some(Sealed {
                    last_seq,
                    min_ns: r.get(4)?,
                    max_ns: r.get(5)?,
                    min_id: r.get(6)?,
                    max_id: r.get(7)?,
                }),
            },
        })
    })?;
    rows.collect()
}

/// Seals the open segment (the last of `segments`), whose last position is
/// `last_seq`, and opens the next, with the field indexes the sealed one has. From
/// schema 8 (`schema`), the sealed one keeps its tail index and waits for its
/// postings, made off the writer ([`super::later`]); in schemas 6 and 7 it got the query indexes it
/// was written without ([`schema::SEAL_INDEXES`], built in sorted bulk). The next
/// one is made with the open layout from schema 6 ([`schema::OPEN_INDEXES`] from
/// schema 7); before, every segment has every query index. Runs inside the
/// writer's transaction.
pub(super) fn seal(
    conn: &Connection,
    schema: u32,
    segments: &mut Vec<Segment>,
    last_seq: i64,
) -> Result<(), rusqlite::Error> {
    let deferred = schema >= schema::KEYED;
    let open = segments.last_mut().expect("a store has an open segment");
    let t = &open.table;
    let layout = match schema {
        _ if open.layout == Layout::Indexed => Layout::Indexed,
        s if s >= schema::POSTINGS => Layout::Open,
        s if s >= schema::KEYED => {
            conn.execute_batch(&schema::SEAL_INDEXES.replace("audit_records", t))?;
            Layout::Indexed
        }
        _ => open.layout,
    };
    if layout != open.layout {
        conn.execute(
            "UPDATE audit_segments SET keyed = ?1 WHERE n = ?2",
            [layout.keyed(), open.n],
        )?;
        open.layout = layout;
    }
    let sealed = conn.query_row(
        &format!(
            "SELECT coalesce((SELECT min(time_ns) FROM {t}), {max}), \
                    coalesce((SELECT max(time_ns) FROM {t}), {min}), \
                    coalesce((SELECT min(id) FROM {t}), '~'), \
                    coalesce((SELECT max(id) FROM {t}), '')",
            max = i64::MAX,
            min = i64::MIN,
        ),
        [],
        |r| {
            Ok(Sealed {
                last_seq,
                min_ns: r.get(0)?,
                max_ns: r.get(1)?,
                min_id: r.get(2)?,
                max_id: r.get(3)?,
            })
        },
    )?;
    conn.execute(
        "UPDATE audit_segments SET last_seq = ?1, min_ns = ?2, max_ns = ?3, min_id = ?4, \
         max_id = ?5 WHERE n = ?6",
        params![
            sealed.last_seq,
            sealed.min_ns,
            sealed.max_ns,
            sealed.min_id,
            sealed.max_id,
            open.n
        ],
    )?;
    let fields = field_names(conn, &open.table)?;
    open.sealed = Some(sealed);
    let n = open.n + 1;
    let table = table_name(n);
    conn.execute_batch(&schema::segment_ddl(&table, schema))?;
    for name in fields {
        conn.execute_batch(&field_index_sql(Placeholder::Question, &table, &name))?;
    }
    match deferred {
        true => conn.execute(
            "INSERT INTO audit_segments (n, name, first_seq, keyed) VALUES (?1, ?2, ?3, 0)",
            params![n, table, last_seq + 1],
        )?,
        false => conn.execute(
            "INSERT INTO audit_segments (n, name, first_seq) VALUES (?1, ?2, ?3)",
            params![n, table, last_seq + 1],
        )?,
    };
    segments.push(Segment {
        n,
        table,
        first_seq: last_seq + 1,
        sealed: None,
        layout: match deferred {
            true => Layout::Open,
            false => Layout::Indexed,
        },
    });
    Ok(())
}

/// The metadata fields `table` has an index on.
fn field_names(conn: &Connection, table: &str) -> Result<Vec<String>, rusqlite::Error> {
    let prefix = field_index_name(table, "");
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 ORDER BY name",
    )?;
    let names = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for name in names {
        if let Some(field) = name?.strip_prefix(&prefix) {
            out.push(field.to_string());
        }
    }
    Ok(out)
}

/// Drops a sealed segment whose rows are all purged or to be purged (`DROP TABLE`
/// frees its pages without touching its rows one by one).
pub(super) fn drop_segment(conn: &Connection, segment: &Segment) -> Result<(), rusqlite::Error> {
    debug_assert!(segment.sealed.is_some(), "only a sealed segment is dropped");
    if let Some(postings) = segment.postings() {
        postings.remove(conn)?;
    }
    conn.execute_batch(&format!("DROP TABLE {}", segment.table))?;
    conn.execute("DELETE FROM audit_segments WHERE n = ?1", [segment.n])?;
    Ok(())
}

/// The time range of a segment's rows: stored for a sealed one, read (two index
/// probes) for the open one; `None` when it holds no row.
pub(super) fn time_range(
    conn: &Connection,
    segment: &Segment,
) -> Result<Option<(i64, i64)>, rusqlite::Error> {
    if let Some(s) = &segment.sealed {
        return Ok((s.min_ns <= s.max_ns).then_some((s.min_ns, s.max_ns)));
    }
    let t = &segment.table;
    conn.query_row(
        &format!("SELECT (SELECT min(time_ns) FROM {t}), (SELECT max(time_ns) FROM {t})"),
        [],
        |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
    )
}

/// The newest row's position and link, newest segment first.
pub(super) fn head(
    conn: &Connection,
    segments: &[Segment],
) -> Result<Option<(i64, String)>, rusqlite::Error> {
    for s in segments.iter().rev() {
        let row = conn
            .prepare_cached(&format!(
                "SELECT seq, {} FROM {} ORDER BY seq DESC LIMIT 1",
                super::compress::AS_TEXT.link,
                s.table
            ))?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if row.is_some() {
            return Ok(row);
        }
    }
    Ok(None)
}

/// A row of a page: its time and position (the page order) and what was read.
pub(super) type PageRow<T> = (i64, i64, T);

/// Reads the first `need` rows of a page in `order` from the segments: newest
/// segment first for [`Order::NewestFirst`] (oldest first otherwise), each read
/// with `read` (the page's own SQL, ordered and limited), stopping once `need`
/// rows are held that no row of the segments left can come before — a segment's
/// rows all have lower positions than a newer one's, so only its time range
/// matters. The time ranges of the segments left are kept as a running bound, and
/// a segment whose time range misses `window` (the times the page's rows can have,
/// both ends included) is not read.
pub(super) fn page<T>(
    conn: &Connection,
    segments: &[Segment],
    order: Order,
    window: (i64, i64),
    need: usize,
    mut read: impl FnMut(&Segment) -> Result<Vec<PageRow<T>>, StoreError>,
) -> Result<Vec<PageRow<T>>, StoreError> {
    let db = |e: rusqlite::Error| StoreError::Database(e.to_string());
    let walk: Vec<&Segment> = match order {
        Order::NewestFirst => segments.iter().rev().collect(),
        Order::OldestFirst => segments.iter().collect(),
    };
    if let [only] = walk.as_slice() {
        return read(only);
    }
    let ranges: Vec<Option<(i64, i64)>> = walk
        .iter()
        .map(|s| time_range(conn, s))
        .collect::<Result<_, _>>()
        .map_err(db)?;
    // For each step, the time bound of the segments from there on: the newest time
    // among them (newest first) or the oldest (oldest first).
    let mut bounds: Vec<Option<i64>> = vec![None; walk.len()];
    {
        let mut acc: Option<i64> = None;
        for (i, range) in ranges.iter().enumerate().rev() {
            if let Some((lo, hi)) = *range {
                let edge = match order {
                    Order::NewestFirst => hi,
                    Order::OldestFirst => lo,
                };
                acc = Some(acc.map_or(edge, |a| match order {
                    Order::NewestFirst => a.max(edge),
                    Order::OldestFirst => a.min(edge),
                }));
            }
            bounds[i] = acc;
        }
    }
    let rank = |a: &PageRow<T>, b: &PageRow<T>| -> Ordering {
        let by = (a.0, a.1).cmp(&(b.0, b.1));
        match order {
            Order::NewestFirst => by.reverse(),
            Order::OldestFirst => by,
        }
    };
    let mut rows: Vec<PageRow<T>> = Vec::new();
    for (i, s) in walk.iter().enumerate() {
        let Some((lo, hi)) = ranges[i] else { continue };
        if hi < window.0 || lo > window.1 {
            continue;
        }
        if rows.len() >= need {
            let last = rows[need - 1].0;
            // Rows left are at most (at least) the bound, and ties go to the
            // segment walked first (higher positions first when newest first).
            let done = match (order, bounds[i]) {
                (_, None) => true,
                (Order::NewestFirst, Some(b)) => b <= last,
                (Order::OldestFirst, Some(b)) => b >= last,
            };
            if done {
                break;
            }
        }
        rows.extend(read(s)?);
        rows.sort_by(&rank);
        rows.truncate(need);
    }
    Ok(rows)
}
