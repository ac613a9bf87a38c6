//! Arbitrary bytes as a spool segment, as a version 2 segment (header and frames
//! around the bytes) and as a damaged copy of a good segment: reading never panics,
//! and the whole frames of the good segment are all found again.
#![no_main]

use audit_runtime::spool::{Spool, SpoolEntry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("audit-fuzz-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let raw = dir.join("raw.seg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&raw, data).unwrap();
    let _ = Spool::read_segment(&raw);

    // A good segment of three entries, then the fuzz bytes written over its middle.
    let mut spool = Spool::open(dir.join("spool")).unwrap();
    let text = String::from_utf8_lossy(data).into_owned();
    let entries = vec![
        SpoolEntry::new("a", r#"{"n":1}"#),
        // An empty reason is no reason (the format stores its length).
        SpoolEntry { reason: (!text.is_empty()).then(|| text.clone()), ..SpoolEntry::new("b", text) },
        SpoolEntry::new("c", r#"{"n":3}"#),
    ];
    if spool.append(&entries).is_err() {
        return;
    }
    spool.seal();
    let seg = spool.segments().unwrap().remove(0);
    let good = Spool::read_segment(&seg).unwrap();
    assert_eq!(good.entries, entries);
    assert!(good.corrupt.is_empty());
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = data.len() % bytes.len().max(1);
    for (i, b) in data.iter().take(8).enumerate() {
        if let Some(slot) = bytes.get_mut(at + i) {
            *slot ^= b;
        }
    }
    std::fs::write(&seg, &bytes).unwrap();
    let damaged = Spool::read_segment(&seg).unwrap();
    assert!(damaged.entries.len() <= 3);
});
