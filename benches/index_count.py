#!/usr/bin/env python3
"""What each random-key index costs a segmented SQLite write (issue 19).

    python3 benches/index_count.py        # ROWS=400000, files in $TMPDIR

Writes the same rows (the store's columns, 900-byte records, 1 000 actors, 100 000
entity ids) into tables of 20 000 rows, batches of 1 000, WAL, synchronous=NORMAL,
32 MiB checkpoints, with Python's own SQLite: without query indexes, with the six
query indexes, without the email index, and without the actor and email indexes.
Prints each rate and its ratio to the index-free one, two rounds.
"""
import tempfile
import sqlite3, time, random, os, uuid
DIR=tempfile.mkdtemp()
ROWS=int(os.environ.get("ROWS","400000")); SEG=20000; BATCH=1000
random.seed(7)
rows=[]
for i in range(ROWS):
    a=random.randrange(1000); app=random.randrange(100000)
    rows.append((str(uuid.UUID(int=(i<<64)|random.getrandbits(64))), 1780000000000000000+i*1000000, "app_add", 1, "app", "info", "success",
                 f"user-{a}", f"user{a}@example.com", f"tenant-{a%10}", "app", 1, f"app-{app}",
                 f"User {a} ran app_add on app {app} (Sales dashboard, Europe region)", "h"*64, "l"*64, "x"*900))
COLS="seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time_ns INTEGER NOT NULL, event TEXT, code INTEGER, category TEXT, level TEXT, outcome TEXT, actor_id TEXT, actor_email TEXT, tenant TEXT, entity_type TEXT, entity_type_code INTEGER, entity_id TEXT, description TEXT, hash TEXT, link TEXT, record TEXT"
def idx(t, email, actor=True):
    s=f"CREATE INDEX {t}_time ON {t}(time_ns); CREATE INDEX {t}_tenant ON {t}(tenant,time_ns); CREATE INDEX {t}_event ON {t}(event,time_ns); CREATE INDEX {t}_entity ON {t}(entity_type,entity_id,time_ns);"
    if actor: s+=f"CREATE INDEX {t}_actor ON {t}(actor_id,time_ns);"
    if email: s+=f"CREATE INDEX {t}_email ON {t}(actor_email,time_ns);"
    return s
def run(name, indexes, email=True, actor=True):
    p=f"{DIR}/e-{name}.db"
    for f in (p, p+"-wal", p+"-shm"):
        if os.path.exists(f): os.remove(f)
    c=sqlite3.connect(p, isolation_level=None); c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL"); c.execute("PRAGMA cache_size=-65536"); c.execute("PRAGMA wal_autocheckpoint=8192")
    t0=time.time(); seg=-1
    for b in range(0, ROWS, BATCH):
        c.execute("BEGIN IMMEDIATE")
        s=b//SEG
        if s!=seg:
            seg=s; c.executescript(f"CREATE TABLE s{s} ({COLS});" + (idx(f"s{s}", email, actor) if indexes else ""))
            if not c.in_transaction:
                c.execute("BEGIN IMMEDIATE")
        c.executemany(f"INSERT INTO s{s} VALUES (NULL, ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)", rows[b:b+BATCH])
        c.execute("COMMIT")
    r=ROWS/(time.time()-t0); c.close(); return r
for rnd in range(2):
    free=run("free", False); six=run("six", True); five=run("five", True, email=False); four=run("four", True, email=False, actor=False)
    print(f"round {rnd}: index-free {free/1000:.0f}k, six {six/1000:.0f}k ({six/free:.2f}x), no email {five/1000:.0f}k ({five/free:.2f}x), no actor/email {four/1000:.0f}k ({four/free:.2f}x)")
