#!/usr/bin/env python3
"""What SQLite's schema re-parse costs a connection, by segment count (issue 19).

    python3 benches/schema_reparse.py             # schema 9; files in $TMPDIR
    SCHEMA=8 python3 benches/schema_reparse.py    # schema 8, a postings table each

Makes files of 50, 500, 2 000 and 5 000 segments (the segment table with its
unique id, two triggers and the tail index; in schema 8 also its `{segment}_keys`
postings table, in schema 9 one `audit_postings` table for all), then times a
second connection's first statement after opening and after each of seven schema
changes made by the first (a seal does one; in schema 8 a postings write did
another). Prints the median, min and max per size.

The statements follow `segment_ddl` (audit-runtime/src/store/sqlite/schema.rs) and
the postings table of `postings.rs`, with the update trigger's condition shortened
(the real one tests every column), so the figures are a little below the real schema's.
"""
import os, sqlite3, statistics, tempfile, time

DIR = tempfile.mkdtemp()
SCHEMA = int(os.environ.get("SCHEMA", "9"))
COLS = """seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time_ns INTEGER NOT NULL,
 event TEXT NOT NULL, code INTEGER NOT NULL, category TEXT NOT NULL, level TEXT NOT NULL,
 outcome TEXT NOT NULL, actor_id TEXT, actor_email TEXT, tenant TEXT, entity_type TEXT,
 entity_type_code INTEGER, entity_id TEXT, description TEXT NOT NULL, hash TEXT NOT NULL,
 link TEXT NOT NULL, record TEXT NOT NULL, erased_ns INTEGER"""
def seg(t):
    return f"""CREATE TABLE {t} ({COLS});
CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} WHEN NOT EXISTS (SELECT 1 FROM audit_meta)
 BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END;
CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} WHEN NOT EXISTS (SELECT 1 FROM audit_meta)
 OR OLD.erased_ns IS NOT NULL OR NEW.erased_ns IS NULL OR NEW.seq IS NOT OLD.seq OR NEW.id IS NOT OLD.id
 OR NEW.time_ns IS NOT OLD.time_ns OR NEW.event IS NOT OLD.event OR NEW.hash IS NOT OLD.hash
 BEGIN SELECT RAISE(ABORT, '{t} cannot be updated'); END;
CREATE INDEX {t}_tail ON {t} (time_ns, actor_id, actor_email, entity_type, entity_id, tenant, event);
""" + (f"""CREATE TABLE {t}_keys (kind INTEGER, key TEXT, block BLOB, PRIMARY KEY (kind, key)) WITHOUT ROWID;
""" if SCHEMA == 8 else "")
for n in [50, 500, 2000, 5000]:
    p = os.path.join(DIR, f"s{n}.db")
    a = sqlite3.connect(p, isolation_level=None); a.execute("PRAGMA journal_mode=WAL")
    a.execute("CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT)")
    if SCHEMA >= 9:
        a.execute("CREATE TABLE audit_postings (segment INTEGER, kind INTEGER, key TEXT, block BLOB, "
                  "PRIMARY KEY (segment, kind, key)) WITHOUT ROWID")
    a.executescript("BEGIN;" + "".join(seg(f"s{i}") for i in range(n)) + "COMMIT;")
    b = sqlite3.connect(p, isolation_level=None)
    t0 = time.perf_counter(); b.execute("SELECT count(*) FROM audit_meta").fetchall(); first = time.perf_counter() - t0
    xs = []
    for k in range(7):
        a.execute(f"CREATE TABLE extra{k} (x)")
        t0 = time.perf_counter(); b.execute("SELECT count(*) FROM audit_meta").fetchall(); xs.append(time.perf_counter() - t0)
    print(f"{n:5} segments: open+first query {first*1e3:7.1f} ms; after a schema change median {statistics.median(xs)*1e3:7.1f} ms (min {min(xs)*1e3:.1f}, max {max(xs)*1e3:.1f})", flush=True)
    a.close(); b.close()
    os.remove(p)
os.rmdir(DIR)
print("schema", SCHEMA, "sqlite", sqlite3.sqlite_version)
