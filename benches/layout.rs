//! Issue 19: which SQLite layout keeps random-key indexes cheap to write? The same
//! realistic records (`support/records.rs`: 1 000 actors, 100 000 entity ids) written
//! in one run into several layouts with raw SQL, beside the index-free table:
//!
//! - `index-free`: today's row (JSON, filter columns, hash and link as hex), the
//!   `seq` key and the unique `id` only;
//! - `today`: plus today's six query indexes;
//! - `keys 4k`: append-like indexes on the row (time, tenant, event, entity type);
//!   actor, email and entity in one `WITHOUT ROWID` key table `(kind, key, time,
//!   seq)` in the same file;
//! - `keys 1k file`: the same key table in an attached file with 1 KiB pages (a
//!   random insert dirties a quarter of the bytes);
//! - `segments`: today's row and indexes in one table per SEGMENT rows (time
//!   partitions: every index stays small);
//! - `narrow`: today's indexes, hash and link as 32 raw bytes, no `description`
//!   column (the JSON holds it);
//! - `segments zstd`: `segments` with the rows of `zstd dict`;
//! - `zstd dict`: `narrow`, and the record JSON compressed with zstd (level 3) and
//!   a 16 KiB dictionary trained on 2 000 of the records (the catalog's example
//!   records would be the source in a store).
//! - `sealed by writer`: segments written with the append-order indexes and a tail
//!   `(time, actor, email, entity)`; when a segment is full the writer builds its
//!   time, actor, email and entity indexes and drops the tail in the transaction of
//!   the next row (the SQLite store's seal, schema 6);
//! - `keys by helper`: the same segments, but a full segment's actor, email and
//!   entity keys are copied in sorted bulk into `WITHOUT ROWID` key tables of a file
//!   of their own by a helper thread with its own connection, beside the writes (one
//!   writer per file), and the tail stays as the segment's time index. Its rate
//!   counts until the helper has keyed every full segment.
//!
//! ```sh
//! cargo bench --bench layout            # ROWS=1000000 BATCH=10000 SEGMENT=100000 LAYOUTS=all
//! ```
//!
//! Prints rows/s, bytes on disk per record and each layout's rate over the
//! index-free one, then the median page of 50 (rows read and parsed into records) for
//! an actor and for an entity.

use std::path::Path;
use std::time::Instant;

use audit::Record;
use audit::sinks::Item;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params};

#[path = "support/records.rs"]
mod records;
use records::{Items, env};

const ROW: &str = "seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time_ns INTEGER NOT NULL,
    event TEXT NOT NULL, code INTEGER NOT NULL, category TEXT NOT NULL, level TEXT NOT NULL,
    outcome TEXT NOT NULL, actor_id TEXT, actor_email TEXT, tenant TEXT, entity_type TEXT,
    entity_type_code INTEGER, entity_id TEXT, description TEXT NOT NULL, hash TEXT NOT NULL,
    link TEXT NOT NULL, record TEXT NOT NULL";

/// Today's query indexes on table `t`.
fn today_indexes(t: &str) -> String {
    format!("{}{}", keyed_indexes(t), few_value_indexes(t))
}

/// The time index and the random-key ones (actor, email, entity) on table `t`.
fn keyed_indexes(t: &str) -> String {
    format!(
        "CREATE INDEX {t}_time ON {t} (time_ns);
         CREATE INDEX {t}_actor ON {t} (actor_id, time_ns) WHERE actor_id IS NOT NULL;
         CREATE INDEX {t}_email ON {t} (actor_email, time_ns) WHERE actor_email IS NOT NULL;
         CREATE INDEX {t}_entity ON {t} (entity_type, entity_id, time_ns) WHERE entity_type IS NOT NULL;"
    )
}

/// The indexes of few distinct keys (tenant, event) on table `t`.
fn few_value_indexes(t: &str) -> String {
    format!(
        "CREATE INDEX {t}_tenant ON {t} (tenant, time_ns) WHERE tenant IS NOT NULL;
         CREATE INDEX {t}_event ON {t} (event, time_ns);"
    )
}

/// The open segment's indexes of `sealed by writer` and `keys by helper`: the
/// tail and the few-value ones.
fn tail_indexes(t: &str) -> String {
    format!(
        "CREATE INDEX {t}_tail ON {t} (time_ns, actor_id, actor_email, entity_type, entity_id);
         {}",
        few_value_indexes(t)
    )
}

/// What the writer builds when it seals segment `t` (`sealed by writer`).
fn seal_indexes(t: &str) -> String {
    format!("{} DROP INDEX {t}_tail;", keyed_indexes(t))
}

/// The row of `narrow`: hash and link as bytes, no description, record as bytes.
fn narrow_row() -> String {
    ROW.replace("description TEXT NOT NULL, ", "")
        .replace("hash TEXT NOT NULL", "hash BLOB NOT NULL")
        .replace("link TEXT NOT NULL", "link BLOB NOT NULL")
        .replace("record TEXT NOT NULL", "record BLOB NOT NULL")
}

/// The append-like indexes (few distinct keys, or time-ordered).
const APPEND_INDEXES: &str = "
    CREATE INDEX r_time ON r (time_ns);
    CREATE INDEX r_tenant ON r (tenant, time_ns) WHERE tenant IS NOT NULL;
    CREATE INDEX r_entity_type ON r (entity_type, time_ns) WHERE entity_type IS NOT NULL;
    CREATE INDEX r_event ON r (event, time_ns);";

const KEYS: &str = "(kind INTEGER NOT NULL, key TEXT NOT NULL, time_ns INTEGER NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (kind, key, time_ns, seq)) WITHOUT ROWID";

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    IndexFree,
    Today,
    Keys,
    KeysFile,
    Segments,
    Narrow,
    Compressed,
    SegmentsCompressed,
    SealedByWriter,
    KeysByHelper,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::IndexFree => "index-free",
            Layout::Today => "today",
            Layout::Keys => "keys 4k",
            Layout::KeysFile => "keys 1k file",
            Layout::Segments => "segments",
            Layout::Narrow => "narrow",
            Layout::Compressed => "zstd dict",
            Layout::SegmentsCompressed => "segments zstd",
            Layout::SealedByWriter => "sealed by writer",
            Layout::KeysByHelper => "keys by helper",
        }
    }
}

/// The columns of a record, as the store writes them.
struct Cols {
    id: String,
    time_ns: i64,
    actor_id: Option<String>,
    actor_email: Option<String>,
    tenant: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<String>,
}

fn cols(r: &Record) -> Cols {
    let actor = r.context.actor.as_ref();
    Cols {
        id: r.id.to_string(),
        time_ns: r.time.as_nanos(),
        actor_id: actor.map(|a| a.id.to_string()),
        actor_email: actor.and_then(|a| a.email.clone()),
        tenant: r.context.tenant.clone(),
        entity_type: r.entity.as_ref().map(|e| e.kind.to_string()),
        entity_id: r
            .entity
            .as_ref()
            .and_then(|e| e.id.as_ref())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
    }
}

fn open(path: &Path, layout: Layout) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -64 * 1024).unwrap();
    let schema = match layout {
        Layout::IndexFree => format!("CREATE TABLE r ({ROW});"),
        Layout::Today => format!("CREATE TABLE r ({ROW}); {}", today_indexes("r")),
        Layout::Keys => format!("CREATE TABLE r ({ROW}); {APPEND_INDEXES} CREATE TABLE k {KEYS};"),
        Layout::KeysFile => {
            let keys = path.with_extension("keys");
            conn.execute("ATTACH DATABASE ?1 AS kf", [keys.to_str().unwrap()])
                .unwrap();
            conn.pragma_update(Some("kf"), "page_size", 1024).unwrap();
            conn.pragma_update(Some("kf"), "journal_mode", "WAL")
                .unwrap();
            conn.pragma_update(Some("kf"), "cache_size", -64 * 1024)
                .unwrap();
            format!("CREATE TABLE r ({ROW}); {APPEND_INDEXES} CREATE TABLE kf.k {KEYS};")
        }
        Layout::Segments
        | Layout::SegmentsCompressed
        | Layout::SealedByWriter
        | Layout::KeysByHelper => String::new(),
        Layout::Narrow | Layout::Compressed => {
            format!("CREATE TABLE r ({}); {}", narrow_row(), today_indexes("r"))
        }
    };
    conn.execute_batch(&schema).unwrap();
    conn
}

/// Writes `rows` records in batches, one transaction each; rows per second.
fn write(
    conn: &mut Connection,
    layout: Layout,
    rows: usize,
    batch: usize,
    segment: usize,
    dict: &[u8],
) -> f64 {
    let mut items = Items::new().take(rows).peekable();
    let mut seq: i64 = 0;
    let mut zstd = zstd::bulk::Compressor::with_dictionary(3, dict).unwrap();
    let start = Instant::now();
    let keyer = (layout == Layout::KeysByHelper).then(|| Keyer::start(conn.path().unwrap()));
    while items.peek().is_some() {
        let chunk: Vec<Item> = items.by_ref().take(batch).collect();
        let tx = conn.transaction().unwrap();
        let mut full = Vec::new();
        for item in &chunk {
            seq += 1;
            full.extend(insert(&tx, layout, item, seq, segment, &mut zstd));
        }
        tx.commit().unwrap();
        // The segments this batch filled are committed: the helper may read them.
        if let Some(k) = &keyer {
            full.into_iter().for_each(|s| k.tx.send(s).unwrap());
        }
    }
    if let Some(k) = keyer {
        k.finish();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

/// The helper of `keys by helper`: its own connection, on a file of its own, with
/// the records' file attached for reading.
struct Keyer {
    /// Full segments, once committed.
    tx: std::sync::mpsc::Sender<usize>,
    thread: std::thread::JoinHandle<()>,
}

impl Keyer {
    fn start(records: &str) -> Keyer {
        let records = records.to_owned();
        let keys = Path::new(&records).with_extension("keys");
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let thread = std::thread::spawn(move || {
            let conn = Connection::open(&keys).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
            conn.pragma_update(None, "cache_size", -64 * 1024).unwrap();
            conn.execute("ATTACH DATABASE ?1 AS rec", [&records])
                .unwrap();
            for s in rx {
                conn.execute_batch(&format!(
                    "BEGIN;
                     CREATE TABLE ka{s} (key TEXT, time_ns INTEGER, seq INTEGER,
                         PRIMARY KEY (key, time_ns, seq)) WITHOUT ROWID;
                     INSERT INTO ka{s} SELECT actor_id, time_ns, seq FROM rec.s{s}
                         WHERE actor_id IS NOT NULL ORDER BY 1, 2, 3;
                     CREATE TABLE ke{s} (key TEXT, time_ns INTEGER, seq INTEGER,
                         PRIMARY KEY (key, time_ns, seq)) WITHOUT ROWID;
                     INSERT INTO ke{s} SELECT actor_email, time_ns, seq FROM rec.s{s}
                         WHERE actor_email IS NOT NULL ORDER BY 1, 2, 3;
                     CREATE TABLE kn{s} (type TEXT, key TEXT, time_ns INTEGER, seq INTEGER,
                         PRIMARY KEY (type, key, time_ns, seq)) WITHOUT ROWID;
                     INSERT INTO kn{s} SELECT entity_type, entity_id, time_ns, seq FROM rec.s{s}
                         WHERE entity_type IS NOT NULL ORDER BY 1, 2, 3, 4;
                     COMMIT;"
                ))
                .unwrap();
            }
        });
        Keyer { tx, thread }
    }

    /// Waits until every segment handed over is keyed.
    fn finish(self) {
        let Keyer { tx, thread } = self;
        drop(tx);
        thread.join().unwrap();
    }
}

/// A zstd dictionary trained on 2 000 records (the store would train it once, on
/// the catalog's example records, and keep it beside the data).
fn dictionary() -> Vec<u8> {
    let samples: Vec<Vec<u8>> = Items::new()
        .skip(5000)
        .take(2000)
        .map(|i| i.json().as_bytes().to_vec())
        .collect();
    zstd::dict::from_samples(&samples, 16 * 1024).unwrap()
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    layout: Layout,
    item: &Item,
    seq: i64,
    segment: usize,
    zstd: &mut zstd::bulk::Compressor<'_>,
) -> Option<usize> {
    let r = item.record();
    let c = cols(r);
    let hash = r.hash.as_ref().unwrap().as_str().to_owned();
    // A stand-in link of the right shape (the chain's cost is not what is measured).
    let link = hash.clone();
    let segmented = matches!(
        layout,
        Layout::Segments
            | Layout::SegmentsCompressed
            | Layout::SealedByWriter
            | Layout::KeysByHelper
    );
    let tailed = matches!(layout, Layout::SealedByWriter | Layout::KeysByHelper);
    let mut full = None;
    let narrow = matches!(
        layout,
        Layout::Narrow | Layout::Compressed | Layout::SegmentsCompressed
    );
    let compressed = matches!(layout, Layout::Compressed | Layout::SegmentsCompressed);
    let table = if segmented {
        let n = (seq as usize - 1) / segment;
        let t = format!("s{n}");
        if (seq as usize - 1).is_multiple_of(segment) {
            let row = if narrow { narrow_row() } else { ROW.to_owned() };
            let indexes = if tailed {
                tail_indexes(&t)
            } else {
                today_indexes(&t)
            };
            tx.execute_batch(&format!("CREATE TABLE {t} ({row}); {indexes}"))
                .unwrap();
            if n > 0 && tailed {
                full = Some(n - 1);
                if layout == Layout::SealedByWriter {
                    tx.execute_batch(&seal_indexes(&format!("s{}", n - 1)))
                        .unwrap();
                }
            }
        }
        t
    } else {
        "r".to_owned()
    };
    // Today's row, or the narrow one: no description, hash and link as 32 bytes,
    // the record as bytes (compressed or not).
    let mut columns = String::from(
        "seq, id, time_ns, event, code, category, level, outcome, actor_id, actor_email, \
         tenant, entity_type, entity_type_code, entity_id",
    );
    let mut values: Vec<Value> = vec![
        seq.into(),
        c.id.clone().into(),
        c.time_ns.into(),
        r.event.to_string().into(),
        i64::from(r.code).into(),
        r.category.to_string().into(),
        "info".to_owned().into(),
        "success".to_owned().into(),
        c.actor_id.clone().into(),
        c.actor_email.clone().into(),
        c.tenant.clone().into(),
        c.entity_type.clone().into(),
        1.into(),
        c.entity_id.clone().into(),
    ];
    if narrow {
        let bytes = |h: &str| -> Value {
            Value::Blob(
                (0..32)
                    .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
            )
        };
        let record = if compressed {
            zstd.compress(item.json().as_bytes()).unwrap()
        } else {
            item.json().as_bytes().to_vec()
        };
        values.extend([bytes(&hash), bytes(&link), Value::Blob(record)]);
    } else {
        columns.push_str(", description");
        values.extend([
            r.description.clone().into(),
            hash.into(),
            link.into(),
            item.json().to_owned().into(),
        ]);
    }
    columns.push_str(", hash, link, record");
    let slots: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
    tx.prepare_cached(&format!(
        "INSERT INTO {table} ({columns}) VALUES ({})",
        slots.join(", ")
    ))
    .unwrap()
    .execute(rusqlite::params_from_iter(values))
    .unwrap();
    if matches!(layout, Layout::Keys | Layout::KeysFile) {
        let mut k = tx
            .prepare_cached("INSERT INTO k VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        if let Some(a) = &c.actor_id {
            k.execute(params![1, a, c.time_ns, seq]).unwrap();
        }
        if let Some(e) = &c.actor_email {
            k.execute(params![2, e, c.time_ns, seq]).unwrap();
        }
        if let (Some(t), Some(id)) = (&c.entity_type, &c.entity_id) {
            k.execute(params![3, format!("{t}\u{1f}{id}"), c.time_ns, seq])
                .unwrap();
        }
    }
    full
}

/// Bytes of the layout's files (WAL checkpointed by closing).
fn bytes_on_disk(path: &Path) -> u64 {
    [path.to_path_buf(), path.with_extension("keys")]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Median time of a page of 50 (newest first) for 200 random actors, then for 200
/// random entities.
fn pages(path: &Path, layout: Layout, rows: usize, segment: usize, dict: &[u8]) -> (f64, f64) {
    let conn = Connection::open(path).unwrap();
    if layout == Layout::KeysFile {
        conn.execute(
            "ATTACH DATABASE ?1 AS kf",
            [path.with_extension("keys").to_str().unwrap()],
        )
        .unwrap();
    }
    let by = |column: &str, kind: i64| -> String {
        match layout {
            Layout::Keys | Layout::KeysFile => format!(
                "SELECT r.time_ns, r.seq, r.record FROM k JOIN r ON r.seq = k.seq
                 WHERE k.kind = {kind} AND k.key = ?1 ORDER BY k.time_ns DESC, k.seq DESC LIMIT 51"
            ),
            Layout::Segments | Layout::SegmentsCompressed => {
                let n = rows.div_ceil(segment);
                let arms: Vec<String> = (0..n)
                    .map(|s| {
                        format!(
                            "SELECT * FROM (SELECT time_ns, seq, record FROM s{s} WHERE {column} = ?1
                             ORDER BY time_ns DESC LIMIT 51)"
                        )
                    })
                    .collect();
                format!(
                    "{} ORDER BY time_ns DESC, seq DESC LIMIT 51",
                    arms.join(" UNION ALL ")
                )
            }
            _ => format!(
                "SELECT time_ns, seq, record FROM r WHERE {column} = ?1
                 ORDER BY time_ns DESC, seq DESC LIMIT 51"
            ),
        }
    };
    let mut rng = fastrand::Rng::with_seed(3);
    let mut unzstd = zstd::bulk::Decompressor::with_dictionary(dict).unwrap();
    let mut median = |sql: String, key: &mut dyn FnMut(&mut fastrand::Rng) -> String| {
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut times: Vec<f64> = (0..200)
            .map(|_| {
                let k = key(&mut rng);
                let start = Instant::now();
                let n = stmt
                    .query_map([k], |r| {
                        Ok(match r.get_ref(2)? {
                            ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                            _ => unreachable!("a record is text or bytes"),
                        })
                    })
                    .unwrap()
                    .map(|json| {
                        let json = json.unwrap();
                        let text =
                            if matches!(layout, Layout::Compressed | Layout::SegmentsCompressed) {
                                unzstd.decompress(&json, 1 << 20).unwrap()
                            } else {
                                json
                            };
                        serde_json::from_slice::<Record>(&text).unwrap()
                    })
                    .count();
                assert!(n > 0);
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let actor = median(by("actor_id", 1), &mut |rng| {
        format!("user-{}", rng.usize(..1000))
    });
    let entity_sql = match layout {
        Layout::Keys | Layout::KeysFile => by("entity_id", 3),
        Layout::Segments | Layout::SegmentsCompressed => by("entity_type = 'app' AND entity_id", 3),
        _ => "SELECT time_ns, seq, record FROM r WHERE entity_type = 'app' AND entity_id = ?1
              ORDER BY time_ns DESC, seq DESC LIMIT 51"
            .to_owned(),
    };
    let keyed = matches!(layout, Layout::Keys | Layout::KeysFile);
    // Entities that exist: the first records' (the generator picks ids at random).
    let known: Vec<String> = Items::new()
        .take(2000)
        .map(|i| cols(i.record()).entity_id.unwrap())
        .collect();
    let entity = median(entity_sql, &mut |rng| {
        let id = &known[rng.usize(..known.len())];
        if keyed {
            format!("app\u{1f}{id}")
        } else {
            id.clone()
        }
    });
    (actor, entity)
}

fn main() {
    let rows = env("ROWS", 1_000_000);
    let batch = env("BATCH", 10_000);
    let segment = env("SEGMENT", 100_000);
    let all = [
        Layout::IndexFree,
        Layout::Today,
        Layout::Keys,
        Layout::KeysFile,
        Layout::Segments,
        Layout::Narrow,
        Layout::Compressed,
        Layout::SegmentsCompressed,
        Layout::SealedByWriter,
        Layout::KeysByHelper,
    ];
    let wanted = std::env::var("LAYOUTS").unwrap_or_else(|_| "all".into());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("layout-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dict = dictionary();
    println!("rows: {rows}, batches of {batch}, segments of {segment}\n");
    println!("| layout | rows/s | vs index-free | bytes/record | actor page | entity page |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut free = None;
    for layout in all {
        if wanted != "all" && !wanted.split(',').any(|w| w == layout.name()) {
            continue;
        }
        let path = dir.join(format!("{}.db", layout.name().replace(' ', "-")));
        let mut conn = open(&path, layout);
        let rate = write(&mut conn, layout, rows, batch, segment, &dict);
        drop(conn);
        let free_rate = *free.get_or_insert(rate);
        let bytes = bytes_on_disk(&path) / rows as u64;
        let (actor, entity) = if matches!(
            layout,
            Layout::IndexFree | Layout::SealedByWriter | Layout::KeysByHelper
        ) {
            (f64::NAN, f64::NAN)
        } else {
            pages(&path, layout, rows, segment, &dict)
        };
        println!(
            "| {} | {:.0} k | {:.2}x | {bytes} | {actor:.2} ms | {entity:.2} ms |",
            layout.name(),
            rate / 1000.0,
            rate / free_rate
        );
    }
}
