#!/usr/bin/env python3
"""Verifies an audit SQLite store from docs/FORMAT.md alone, with no code of the
audit crates: record hashes, the store's link chain (from the purge anchor, if any),
and the producers' prev_hash chains.

    python3 docs/verify_store.py audit.db [--hmac-key-file KEY]

Compressed records (schema 5) need zstd: Python 3.14's compression.zstd, or the
zstandard package (pip install zstandard).

Prints "intact: N rows, P producers, C continued, E erased" and exits 0, or prints
the first break and exits 1.
"""
import hashlib
import hmac
import sqlite3
import sys


def zstd_reader(db):
    """A function from a compressed record (a zstd frame) to its JSON text, with
    the store's dictionaries (audit_dictionaries), found by the frame's dictionary
    id. None for a store without dictionaries."""
    if not db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_dictionaries'"
    ).fetchone():
        return None
    dictionaries = dict(db.execute("SELECT zstd_id, dictionary FROM audit_dictionaries"))
    try:
        from compression import zstd  # Python 3.14

        def decompress(frame):
            dict_id = zstd.get_frame_info(frame).dictionary_id
            return zstd.decompress(frame, zstd_dict=zstd.ZstdDict(dictionaries[dict_id]))

    except ImportError:
        import zstandard

        def decompress(frame):
            dict_id = zstandard.get_frame_parameters(frame).dict_id
            d = zstandard.ZstdCompressionDict(dictionaries[dict_id])
            return zstandard.ZstdDecompressor(dict_data=d).decompress(frame)

    def read(frame):
        try:
            return decompress(frame).decode("utf-8")
        except Exception:  # a changed frame, a missing dictionary
            return None

    return read


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--hmac-key-file"):
        print(__doc__, file=sys.stderr)
        return 2
    key = open(argv[3], "rb").read() if len(argv) == 4 else None
    db = sqlite3.connect("file:%s?mode=ro" % argv[1], uri=True)
    meta = dict(db.execute("SELECT key, value FROM audit_meta"))
    algorithm = meta.get("chain", "sha256")
    if algorithm == "hmac-sha256" and key is None:
        print("the chain is keyed (hmac-sha256): give --hmac-key-file", file=sys.stderr)
        return 2

    def link_of(prev, record_hash):
        data = prev + record_hash.encode("ascii")
        if algorithm == "hmac-sha256":
            return hmac.new(key, data, hashlib.sha256).digest()
        return hashlib.sha256(data).digest()

    anchor = db.execute(
        "SELECT link FROM audit_anchor ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    prev = bytes.fromhex(anchor[0]) if anchor else bytes(32)
    # Stores from before tenant purges have no erased_ns column: nothing is erased.
    columns = {row[1] for row in db.execute("PRAGMA table_info(audit_records)")}
    erased_column = "erased_ns IS NOT NULL" if "erased_ns" in columns else "0"
    # Schema 4 splits the rows into segment tables listed in audit_segments, each
    # holding the positions after the one before it; older stores have one table.
    segmented = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_segments'"
    ).fetchone()
    tables = (
        [name for (name,) in db.execute("SELECT name FROM audit_segments ORDER BY n")]
        if segmented
        else ["audit_records"]
    )

    def all_rows():
        for table in tables:
            yield from db.execute(
                "SELECT seq, hash, link, record, %s FROM %s ORDER BY seq"
                % (erased_column, table)
            )

    unzstd = zstd_reader(db)
    hashes, prev_hashes, rows, erased = set(), [], 0, 0
    for seq, stored_hash, link, record, is_erased in all_rows():
        # Schema 5's compact rows hold the hash and link as 32 bytes.
        if isinstance(stored_hash, bytes):
            stored_hash = stored_hash.hex()
        if isinstance(link, bytes):
            link = link.hex()
        if isinstance(record, bytes) and not is_erased:
            # Schema 5: a zstd frame made with one of the store's dictionaries.
            record = unzstd(record) if unzstd else None
            if record is None:
                print("row %d: the record cannot be decompressed" % seq)
                return 1
        if is_erased:
            # Erased by a tenant purge: the hash stands for the record that was.
            prev = link_of(prev, stored_hash)
            if prev.hex() != link:
                print("row %d: the link chain breaks here" % seq)
                return 1
            hashes.add(stored_hash)
            rows += 1
            erased += 1
            continue
        tail = '"hash":"%s"}' % stored_hash
        if not record.endswith(tail):
            print("row %d: the record does not end with its hash" % seq)
            return 1
        canonical = record[: -len(tail)] + '"hash":null}'
        if hashlib.sha256(canonical.encode("utf-8")).hexdigest() != stored_hash:
            print("row %d: the record was changed (its hash does not match)" % seq)
            return 1
        prev = link_of(prev, stored_hash)
        if prev.hex() != link:
            print("row %d: the link chain breaks here" % seq)
            return 1
        # The record's prev_hash is the 64 hex digits just before ',"hash":'.
        head = record[: -len(tail)]
        if head.endswith('"prev_hash":null,'):
            prev_hashes.append(None)
        else:
            prev_hashes.append(head[-66:-2])
        hashes.add(stored_hash)
        rows += 1
    producers = sum(1 for p in prev_hashes if p is None)
    continued = sum(1 for p in prev_hashes if p is not None and p not in hashes)
    print(
        "intact: %d rows, %d producers, %d continued, %d erased"
        % (rows, producers, continued, erased)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
