//! The query plan SQLite makes for a statement over a store's file, read with a
//! plain connection (shared by the SQLite store's test files).

use std::path::Path;

use rusqlite::functions::FunctionFlags;

/// The details of `EXPLAIN QUERY PLAN sql` with `value` bound to `?1`. The store's
/// connections read records through `audit_record` (compressed or not); planning
/// needs only a function of that name, so a stand-in is registered.
pub fn plan(path: &Path, sql: &str, value: i64) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.create_scalar_function(
        "audit_record",
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        |_| Ok(None::<String>),
    )
    .unwrap();
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map([value], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
