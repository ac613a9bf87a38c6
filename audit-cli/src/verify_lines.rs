//! `audit verify --db FILE.jsonl`: a JSON Lines trail (the JSON Lines sink's file,
//! plain or zstd-compressed, or a purge's export) checked line by line: every record
//! still matches its hash, and the producers' `prev_hash` chains are followed
//! through the file.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use audit_runtime::Record;
use audit_runtime::integrity::hash_of_json;

/// Whether `path` is a file that is not a SQLite database (SQLite files start with
/// `SQLite format 3\0`).
pub fn is_json_lines(path: &Path) -> bool {
    let mut head = [0u8; 16];
    match File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => path.is_file() && &head[..n.min(16)] != b"SQLite format 3\0" && n > 0,
        Err(_) => false,
    }
}

/// What the walk over a file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinesReport {
    /// Records read.
    pub records: u64,
    /// Records whose `prev_hash` is null: chains that start in this file.
    pub producers: u64,
    /// Records whose previous record is not earlier in the file (a rotated file's
    /// first record of each producer, or a record missing before it).
    pub continued: u64,
    /// The first line that breaks, and why.
    pub first_break: Option<(u64, String)>,
}

/// Walks the lines of `reader`.
pub fn walk(reader: impl BufRead) -> LinesReport {
    let mut report = LinesReport::default();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i as u64 + 1;
        // A compressed file whose last frame was cut short (a crash mid-write)
        // reads up to it, then fails here.
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                report.first_break = Some((n, format!("unreadable: {e}")));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let Some((stored, computed)) = hash_of_json(&line) else {
            report.first_break = Some((n, "not a record ending with its hash".into()));
            break;
        };
        if stored != Some(computed.as_str()) {
            report.first_break =
                Some((n, "the record was changed (its hash does not match)".into()));
            break;
        }
        let record: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                report.first_break = Some((n, format!("unreadable record: {e}")));
                break;
            }
        };
        report.records += 1;
        match record.prev_hash {
            None => report.producers += 1,
            Some(p) if !seen.contains(&p.to_string()) => report.continued += 1,
            Some(_) => {}
        }
        seen.insert(computed.to_string());
    }
    report
}

/// The first four bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Walks the file at `path`, through a zstd decoder when it is compressed.
pub fn walk_file(path: &Path) -> std::io::Result<(LinesReport, bool)> {
    let mut head = [0u8; 4];
    let n = File::open(path)?.read(&mut head)?;
    let file = File::open(path)?;
    if head[..n] == ZSTD_MAGIC {
        let decoder = zstd::stream::read::Decoder::new(file)?;
        Ok((walk(BufReader::new(decoder)), true))
    } else {
        Ok((walk(BufReader::new(file)), false))
    }
}

/// Verifies the file and prints the report.
pub fn verify_file(path: &Path) -> Result<ExitCode, String> {
    let (report, compressed) = walk_file(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let kind = if compressed { ", zstd" } else { "" };
    println!("{} records (JSON Lines{kind})", report.records);
    println!(
        "producer chains: {} started here, {} records continue a chain from outside the file \
         (a rotated file's first record per producer; more means records are missing)",
        report.producers, report.continued
    );
    match report.first_break {
        None => {
            println!("intact");
            Ok(ExitCode::SUCCESS)
        }
        Some((line, why)) => {
            println!("BROKEN: line {line}: {why}");
            Ok(ExitCode::from(1))
        }
    }
}
