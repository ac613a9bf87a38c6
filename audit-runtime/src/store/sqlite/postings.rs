//! A sealed segment's postings (schema 8): for each actor id, email, tenant,
//! entity and event in the segment, the times and positions of its rows. They are
//! made after the seal, off the writer ([`super::later`]), in one walk of the
//! segment's tail index (which holds every key) and a hash map per key kind, and
//! written in key order, in blocks of about
//! [`BLOCK_BYTES`]: one row per block, keyed by its first key (a segment holds
//! ~20 000 distinct entity ids: a row each cost as much as the index this
//! replaces). The five random-key and few-value indexes a seal built before cost
//! a sort and a B-tree each, on the writer's thread.
//!
//! From schema 9 every segment's blocks are rows of one table, `audit_postings`,
//! under the segment's number ([`Place::Shared`]). A segment sealed in schema 8
//! had a table of its own, `{segment}_keys` ([`Place::Own`]), which schema 9's
//! migration moves there: each new table changed the schema, which every other
//! connection then parsed again (docs/STORAGE.md).
//!
//! A page filtered on any of those keys reads the postings of its values (a
//! row's time and position, ~3–6 bytes each), keeps the positions in every
//! filter's postings and inside the page's time window, and reads those rows by
//! position, in page order, a few at a time, with the page's whole `WHERE`
//! applied to them: a posting only says which rows may match. A page with no
//! such filter walks the tail index, which the segment keeps (it is its time
//! index).
//!
//! A purge that erases or removes rows of a sealed segment makes its postings
//! again in the same transaction (also when it still waits for them), so that no
//! posting keeps an erased key.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Row, params};

use super::segments::PageRow;
use crate::store::StoreError;
use crate::store::columns::column_text;
use crate::store::query::{Order, Query};

/// What a posting's key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Actor = 1,
    Email = 2,
    Tenant = 3,
    Entity = 4,
    Event = 5,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Actor,
        Kind::Email,
        Kind::Tenant,
        Kind::Entity,
        Kind::Event,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Actor => "actor",
            Kind::Email => "email",
            Kind::Tenant => "tenant",
            Kind::Entity => "entity",
            Kind::Event => "event",
        }
    }
}

/// A block of postings is written once it holds this many bytes (a key's
/// posting is never split: a tenant's may make a block larger).
const BLOCK_BYTES: usize = 4096;

/// Between an entity's type and id in its key: catalog names never hold it, and
/// a key that has it in a stranger place only makes a posting hold more rows
/// than match, which the page's `WHERE` leaves out.
const ENTITY_SEP: char = '\u{1f}';

/// Where sealed segments' postings are kept (`audit_segments.keyed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// A table per segment, `{segment}_keys` (keyed 2): schema 8.
    Own,
    /// Rows of `audit_postings` under the segment's number (keyed 3): schema 9 on.
    Shared,
}

/// The postings of one sealed segment: where its blocks are, and how they are
/// named in errors and findings.
#[derive(Debug, Clone)]
pub(super) struct Postings {
    /// The segment's number (its blocks' first key in [`Place::Shared`]).
    n: i64,
    place: Place,
    /// What errors and findings call them (in [`Place::Own`], their table).
    pub name: String,
}

impl Postings {
    /// The postings of segment `n` (table `t`) kept at `place`.
    pub(super) fn of(n: i64, t: &str, place: Place) -> Postings {
        let name = match place {
            Place::Own => format!("{t}_keys"),
            Place::Shared => format!("audit_postings of {t}"),
        };
        Postings { n, place, name }
    }

    /// The table holding the blocks.
    fn table(&self) -> &str {
        match self.place {
            Place::Own => &self.name,
            Place::Shared => "audit_postings",
        }
    }

    /// The condition (and `AND`) that keeps this segment's blocks in
    /// [`table`](Self::table).
    fn only(&self) -> String {
        match self.place {
            Place::Own => String::new(),
            Place::Shared => format!("segment = {} AND ", self.n),
        }
    }

    /// Removes them (a segment dropped whole, or postings made again).
    pub(super) fn remove(&self, conn: &Connection) -> rusqlite::Result<()> {
        match self.place {
            Place::Own => conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", self.table())),
            Place::Shared => conn
                .execute("DELETE FROM audit_postings WHERE segment = ?1", [self.n])
                .map(drop),
        }
    }
}

/// Schema 9's one table of postings (see [`Place::Shared`]).
pub(super) const SHARED_TABLE: &str = "CREATE TABLE audit_postings (\
    segment INTEGER NOT NULL, kind INTEGER NOT NULL, key TEXT NOT NULL, block BLOB NOT NULL, \
    PRIMARY KEY (segment, kind, key)) WITHOUT ROWID;";

/// Which postings a row is looked up in: a key, or every key starting with a
/// prefix (an entity type without an id).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lookup {
    Key(Kind, String),
    Prefix(Kind, String),
}

/// The postings a query's rows must be in: in one of each group's. Empty when
/// the query filters on none of the keys (its page walks the tail index).
pub(super) fn lookups(query: &Query) -> Vec<Vec<Lookup>> {
    let value = |v: &str| column_text(v, true).into_owned();
    let mut groups = Vec::new();
    if let Some((kind, id)) = &query.entity {
        let kind = value(kind);
        groups.push(vec![match id {
            Some(id) => Lookup::Key(Kind::Entity, format!("{kind}{ENTITY_SEP}{}", value(id))),
            None => Lookup::Prefix(Kind::Entity, format!("{kind}{ENTITY_SEP}")),
        }]);
    }
    if let Some(actor) = &query.actor {
        let actor = value(actor);
        groups.push(vec![
            Lookup::Key(Kind::Actor, actor.clone()),
            Lookup::Key(Kind::Email, actor),
        ]);
    }
    if let Some(tenant) = query.tenant() {
        groups.push(vec![Lookup::Key(Kind::Tenant, value(tenant))]);
    }
    if !query.events.is_empty() {
        groups.push(
            query
                .events
                .iter()
                .map(|e| Lookup::Key(Kind::Event, value(e)))
                .collect(),
        );
    }
    groups
}

/// The blocks of postings table `t`, in `(kind, first key)` order.
pub(super) type Blocks = Vec<(Kind, String, Vec<u8>)>;

/// The postings blocks the rows of segment table `t` make.
pub(super) fn made(conn: &Connection, t: &str) -> rusqlite::Result<Blocks> {
    Ok(blocks(group(conn, t)?))
}

/// Writes `made` as postings `p` (replacing any).
pub(super) fn write(conn: &Connection, p: &Postings, made: Blocks) -> rusqlite::Result<()> {
    let k = p.table();
    let mut insert = match p.place {
        Place::Own => {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS {k}; \
                 CREATE TABLE {k} (kind INTEGER NOT NULL, key TEXT NOT NULL, \
                                   block BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;"
            ))?;
            conn.prepare_cached(&format!(
                "INSERT INTO {k} (kind, key, block) VALUES (?1, ?2, ?3)"
            ))?
        }
        Place::Shared => {
            p.remove(conn)?;
            conn.prepare_cached(&format!(
                "INSERT INTO {k} (segment, kind, key, block) VALUES ({}, ?1, ?2, ?3)",
                p.n
            ))?
        }
    };
    for (kind, first, block) in made {
        insert.execute(params![kind as i64, first, block])?;
    }
    Ok(())
}

/// What is wrong with postings `p` of segment table `t`, if anything: the
/// blocks its rows make now, against those stored, in `(kind, first key)` order.
pub(super) fn check(
    conn: &Connection,
    t: &str,
    p: &Postings,
) -> Result<Option<String>, StoreError> {
    let mut made = blocks(group(conn, t).map_err(db)?).into_iter().peekable();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT kind, key, block FROM {} WHERE {}1 ORDER BY kind, key",
            p.table(),
            p.only()
        ))
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    let named = |kind: i64, key: &str| {
        let key = key.replace(ENTITY_SEP, ":");
        match Kind::ALL.into_iter().find(|k| *k as i64 == kind) {
            Some(kind) => format!("the {} postings from `{key}`", kind.name()),
            None => format!("postings of kind {kind} from `{key}`"),
        }
    };
    while let Some(r) = rows.next().map_err(db)? {
        let kind: i64 = r.get(0).map_err(db)?;
        let key: String = r.get(1).map_err(db)?;
        // Blocks the rows make that come before this one are missing.
        if let Some((mk, mkey, _)) = made.peek()
            && (*mk as i64, mkey.as_str()) < (kind, key.as_str())
        {
            return Ok(Some(format!("{} are missing", named(*mk as i64, mkey))));
        }
        match made.next_if(|(mk, mkey, _)| (*mk as i64, mkey.as_str()) == (kind, key.as_str())) {
            Some((_, _, block)) if r.get_ref(2).map_err(db)?.as_blob().ok() == Some(&block) => {}
            Some(_) => return Ok(Some(format!("{} differ from the rows'", named(kind, &key)))),
            None => {
                return Ok(Some(format!(
                    "{} are not made from the segment's rows",
                    named(kind, &key)
                )));
            }
        }
    }
    Ok(made
        .next()
        .map(|(kind, key, _)| format!("{} are missing", named(kind as i64, &key))))
}

/// The `(time_ns, seq)` of a key's rows while a seal groups them: most entity
/// ids (and many actors) have one row in a segment, kept inline.
type Entries = smallvec::SmallVec<[(i64, i64); 1]>;

/// The rows of segment table `t` grouped by key, a map per [`Kind`].
fn group(
    conn: &Connection,
    t: &str,
) -> rusqlite::Result<[HashMap<String, Entries, RandomState>; 5]> {
    let mut keys: [HashMap<String, Entries, RandomState>; 5] = Default::default();
    let mut post = |kind: Kind, key: &str, at: (i64, i64)| {
        let map = &mut keys[kind as usize - 1];
        match map.get_mut(key) {
            Some(entries) => entries.push(at),
            None => {
                map.insert(key.to_owned(), smallvec::smallvec![at]);
            }
        }
    };
    // Every column read is in the tail index (from schema 7): SQLite walks it,
    // not the table (`an_open_segment_is_read_through_its_tail_index`).
    let mut stmt = conn.prepare(&format!(
        "SELECT time_ns, seq, actor_id, actor_email, tenant, event, entity_type, entity_id FROM {t}"
    ))?;
    let mut rows = stmt.query([])?;
    let mut entity = String::new();
    while let Some(r) = rows.next()? {
        let at = (r.get::<_, i64>(0)?, r.get::<_, i64>(1)?);
        for (kind, i) in [
            (Kind::Actor, 2),
            (Kind::Email, 3),
            (Kind::Tenant, 4),
            (Kind::Event, 5),
        ] {
            if let Some(key) = text(r, i)? {
                post(kind, key, at);
            }
        }
        if let Some(kind) = text(r, 6)? {
            entity.clear();
            entity.push_str(kind);
            entity.push(ENTITY_SEP);
            entity.push_str(text(r, 7)?.unwrap_or_default());
            post(Kind::Entity, &entity, at);
        }
    }
    Ok(keys)
}

/// The blocks of grouped keys, in `(kind, first key)` order: each key, then its
/// posting, both prefixed by their length; a block ends once it holds
/// [`BLOCK_BYTES`].
fn blocks(keys: [HashMap<String, Entries, RandomState>; 5]) -> Vec<(Kind, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut block = Vec::new();
    let mut posting = Vec::new();
    for (kind, map) in Kind::ALL.into_iter().zip(keys) {
        let mut map: Vec<(String, Entries)> = map.into_iter().collect();
        map.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut first: Option<String> = None;
        for (key, mut entries) in map {
            entries.sort_unstable();
            posting.clear();
            encode(&entries, &mut posting);
            varint(key.len() as u64, &mut block);
            block.extend_from_slice(key.as_bytes());
            varint(posting.len() as u64, &mut block);
            block.extend_from_slice(&posting);
            first.get_or_insert(key);
            if block.len() >= BLOCK_BYTES {
                out.push((
                    kind,
                    first.take().expect("set above"),
                    std::mem::take(&mut block),
                ));
            }
        }
        if let Some(first) = first.take() {
            out.push((kind, first, std::mem::take(&mut block)));
        }
    }
    out
}

/// Column `i` of a row as text; `None` when NULL, or a value no page's text can
/// equal (a BLOB, bytes that are not UTF-8: only a hand-edited row has them),
/// which must not fail the seal.
fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    })
}

/// The distinct events of a segment with postings `p`.
pub(super) fn events(conn: &Connection, p: &Postings) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT block FROM {} WHERE {}kind = ?1 ORDER BY key",
            p.table(),
            p.only()
        ))
        .map_err(db)?;
    let rows = stmt.query([Kind::Event as i64]).map_err(db)?;
    let mut out = Vec::new();
    each_block(&p.name, rows, |key, _| {
        out.push(String::from_utf8_lossy(key).into_owned());
        Ok(true)
    })?;
    Ok(out)
}

/// Hands each `(key, posting)` of the blocks `rows` read from postings named `k`
/// (their first column) to `each`, in key order, while it returns `true` (the
/// rest of a block is skipped, the next block read).
fn each_block(
    k: &str,
    mut rows: rusqlite::Rows<'_>,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<bool, String>,
) -> Result<(), StoreError> {
    while let Some(r) = rows.next().map_err(db)? {
        let block = r
            .get_ref(0)
            .map_err(db)?
            .as_blob()
            .map_err(|e| db(e.into()))?;
        each_key(block, &mut each).map_err(|message| corrupt(k, message))?;
    }
    Ok(())
}

/// Hands each `(key, posting)` of a block to `each` in key order, while it
/// returns `true`.
fn each_key(
    block: &[u8],
    mut each: impl FnMut(&[u8], &[u8]) -> Result<bool, String>,
) -> Result<(), String> {
    let mut at = 0;
    let take = |at: &mut usize| -> Result<&[u8], String> {
        let len = read_varint(block, at)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|end| *end <= block.len())
            .ok_or("a block ends inside a key or a posting")?;
        let bytes = &block[*at..end];
        *at = end;
        Ok(bytes)
    };
    while at < block.len() {
        let key = take(&mut at)?;
        let posting = take(&mut at)?;
        if !each(key, posting)? {
            break;
        }
    }
    Ok(())
}

fn corrupt(table: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        seq: 0,
        message: format!("{table}: {message}"),
    }
}

/// The `(time_ns, seq)` of the rows of a segment in one of its postings `p` of
/// each of `groups`, ascending.
pub(super) fn candidates(
    conn: &Connection,
    p: &Postings,
    groups: &[Vec<Lookup>],
) -> Result<Vec<(i64, i64)>, StoreError> {
    let (k, only) = (p.table(), p.only());
    // The blocks that may hold keys from `?2` (included) to `?3` (excluded): the
    // last one starting at or before `?2`, and those starting inside.
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT block FROM {k} WHERE {only}kind = ?1 AND key < ?3 AND key >= \
             coalesce((SELECT max(key) FROM {k} WHERE {only}kind = ?1 AND key <= ?2), ?2) \
             ORDER BY key"
        ))
        .map_err(db)?;
    let mut out: Option<Vec<(i64, i64)>> = None;
    for group in groups {
        let mut union = Vec::new();
        // Postings read (a prefix reads one per key): more than one are merged.
        let mut read = 0;
        for lookup in group {
            let (kind, from, prefix) = match lookup {
                Lookup::Key(kind, key) => (*kind, key, false),
                Lookup::Prefix(kind, prefix) => (*kind, prefix, true),
            };
            // Keys never hold NUL (`column_text`): a key's range ends at key + NUL;
            // a prefix's at the prefix with its last character stepped.
            let mut to = from.clone();
            match prefix {
                false => to.push('\0'),
                true => {
                    let last = to.pop().expect("a prefix ends with the separator");
                    to.push(char::from_u32(last as u32 + 1).expect("the next character"));
                }
            }
            let rows = stmt.query(params![kind as i64, from, to]).map_err(db)?;
            each_block(&p.name, rows, |key, posting| {
                let hit = match prefix {
                    false => key == from.as_bytes(),
                    true => key.starts_with(from.as_bytes()),
                };
                if hit {
                    read += 1;
                    decode(posting, &mut union)?;
                }
                Ok(key < to.as_bytes())
            })?;
        }
        if read > 1 {
            union.sort_unstable();
            union.dedup();
        }
        out = Some(match out {
            None => union,
            Some(held) => intersect(&held, &union),
        });
        if out.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
    }
    Ok(out.unwrap_or_default())
}

/// The entries of both sorted lists.
fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The rows of a page read by position from `candidates` (ascending), in `order`,
/// those inside `window` (both ends included) only: `columns` (starting with
/// `time_ns, seq`) of the rows that pass `filter` (a `WHERE …` over the segment's
/// columns, with `params`), until `need` rows are held or no candidate is left.
#[allow(clippy::too_many_arguments)]
pub(super) fn fetch<T>(
    conn: &Connection,
    t: &str,
    candidates: &[(i64, i64)],
    order: Order,
    window: (i64, i64),
    need: usize,
    columns: &str,
    filter: &str,
    params: &[Value],
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<PageRow<T>>, StoreError> {
    let inside: Vec<i64> = {
        let lo = candidates.partition_point(|c| c.0 < window.0);
        let hi = candidates.partition_point(|c| c.0 <= window.1);
        let kept = &candidates[lo..hi.max(lo)];
        match order {
            Order::NewestFirst => kept.iter().rev().map(|c| c.1).collect(),
            Order::OldestFirst => kept.iter().map(|c| c.1).collect(),
        }
    };
    let sql = format!(
        "SELECT {columns} FROM {t} {filter} AND seq IN (SELECT value FROM json_each(?{}))",
        params.len() + 1
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let mut out: Vec<PageRow<T>> = Vec::new();
    let mut from = 0;
    let mut chunk = need.max(16);
    while from < inside.len() && out.len() < need {
        let to = (from + chunk).min(inside.len());
        let mut list = String::with_capacity((to - from) * 8 + 2);
        list.push('[');
        for (i, seq) in inside[from..to].iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(itoa::Buffer::new().format(*seq));
        }
        list.push(']');
        let mut all: Vec<Value> = params.to_vec();
        all.push(Value::Text(list));
        let mut rows = stmt.query(rusqlite::params_from_iter(all)).map_err(db)?;
        let mut got = Vec::new();
        while let Some(r) = rows.next().map_err(db)? {
            got.push((
                r.get(0).map_err(db)?,
                r.get(1).map_err(db)?,
                map(r).map_err(db)?,
            ));
        }
        got.sort_by(|a: &PageRow<T>, b: &PageRow<T>| {
            let by = (a.0, a.1).cmp(&(b.0, b.1));
            match order {
                Order::NewestFirst => by.reverse(),
                Order::OldestFirst => by,
            }
        });
        out.extend(got);
        from = to;
        chunk = chunk.saturating_mul(2);
    }
    out.truncate(need);
    Ok(out)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Appends `entries` (sorted) to `out`: each as the differences from the one
/// before (the first from `(0, 0)`), zigzag varints (LEB128).
fn encode(entries: &[(i64, i64)], out: &mut Vec<u8>) {
    let mut prev = (0i64, 0i64);
    for &(time, seq) in entries {
        varint(zigzag(time.wrapping_sub(prev.0)), out);
        varint(zigzag(seq.wrapping_sub(prev.1)), out);
        prev = (time, seq);
    }
}

/// Appends the entries of `bytes` (made by [`encode`]) to `out`.
fn decode(bytes: &[u8], out: &mut Vec<(i64, i64)>) -> Result<(), String> {
    let mut prev = (0i64, 0i64);
    let mut at = 0;
    while at < bytes.len() {
        let time = prev.0.wrapping_add(unzigzag(read_varint(bytes, &mut at)?));
        let seq = prev.1.wrapping_add(unzigzag(read_varint(bytes, &mut at)?));
        prev = (time, seq);
        out.push(prev);
    }
    Ok(())
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = bytes.get(*at) else {
            return Err("a posting ends inside a number".into());
        };
        *at += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("a posting holds a number longer than 64 bits".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries come back as written, extreme times (before 1970, the ends of
    /// `i64`) and positions out of time order included; a cut posting is an
    /// error, not fewer rows.
    #[test]
    fn postings_read_back_what_was_written() {
        let entries = vec![
            (i64::MIN, 7),
            (-86_400_000_000_000, 3),
            (0, 1),
            (1_700_000_000_000_000_000, 9),
            (1_700_000_000_000_000_000, 10),
            (1_700_000_000_000_000_001, 2),
            (i64::MAX, i64::MAX),
        ];
        let mut bytes = Vec::new();
        encode(&entries, &mut bytes);
        let mut back = Vec::new();
        decode(&bytes, &mut back).unwrap();
        assert_eq!(back, entries);
        let mut cut = Vec::new();
        assert!(decode(&bytes[..bytes.len() - 1], &mut cut).is_err());
        assert!(decode(&[0xff; 11], &mut cut).is_err());
    }

    #[test]
    fn intersections_keep_the_shared_entries_in_order() {
        let a = [(1, 1), (2, 5), (3, 3), (4, 9)];
        let b = [(2, 5), (3, 4), (4, 9), (5, 1)];
        assert_eq!(intersect(&a, &b), vec![(2, 5), (4, 9)]);
        assert_eq!(intersect(&a, &[]), vec![]);
    }
}
