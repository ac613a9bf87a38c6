//! The JSON writer of the delivery pipeline: the bytes `serde_json` writes for a
//! record, produced without the serde data model (no per-field dispatch, no
//! formatter state) and with a string escaper that checks a whole string branch-free
//! before copying it. The hash chain covers these bytes, so they must be exactly `serde_json`'s:
//! `record::encode`'s tests compare the two on randomized records.

use crate::time::Timestamp;

/// `serde_json`'s escape for each ASCII control byte, `"` and `\` (0 = as is).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string, quotes included.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Branch-free, so it vectorizes: most strings have nothing to escape.
    let dirty = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if dirty {
        escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// Copies `bytes`, escaping what JSON requires (as `serde_json` does).
#[cold]
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(esc);
        if esc == b'u' {
            out.extend_from_slice(&[b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Writes `s` as a JSON string, or `null`.
pub(crate) fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes an integer.
pub(crate) fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes a JSON value in `serde_json`'s compact form (maps in their own order).
pub(crate) fn value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(true) => out.extend_from_slice(b"true"),
        J::Bool(false) => out.extend_from_slice(b"false"),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                int(out, u);
            } else if let Some(i) = n.as_i64() {
                int(out, i);
            } else {
                serde_json::to_writer(&mut *out, n).expect("numbers serialize");
            }
        }
        J::String(s) => string(out, s),
        J::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(out, item);
            }
            out.push(b']');
        }
        J::Object(map) => object(out, map.iter().map(|(k, v)| (k.as_str(), v))),
    }
}

/// Writes a JSON object of `entries`.
pub(crate) fn object<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
) {
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        value(out, v);
    }
    out.push(b'}');
}

/// Writes a timestamp as its RFC 3339 string with nanoseconds, like its `Display`.
pub(crate) fn timestamp(out: &mut Vec<u8>, t: Timestamp) {
    out.push(b'"');
    out.extend_from_slice(&t.rfc3339());
    out.push(b'"');
}

/// Lowercase hex of a SHA-256 digest.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// Lowercase hex of any bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [HEX[(b >> 4) as usize], HEX[(b & 15) as usize]])
        .map(char::from)
        .collect()
}

/// The bytes of a hex string (either case); `None` if it is not one.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_serde(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    #[test]
    fn strings_escape_like_serde_json() {
        let mut samples: Vec<String> = [
            "",
            "plain ascii that is longer than eight bytes",
            "quote \" and backslash \\ and slash /",
            "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f} controls",
            "ünïcödé ✓ 🦀 mixed with \"quotes\"",
            "12345678\"",
            "1234567\\",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> = "ab \"\\\n\t\u{1}\u{1f}é🦀/x".chars().collect();
        for _ in 0..2000 {
            let len = rng.usize(0..40);
            samples.push(
                (0..len)
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect(),
            );
        }
        for s in &samples {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, via_serde(s), "{s:?}");
        }
    }

    #[test]
    fn timestamps_format_like_display() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut cases = vec![
            0,
            1,
            1_700_000_000_123_456_789,
            951_782_400_000_000_000,   // 2000-02-29
            4_107_542_400_000_000_000, // 2100-02-28
            i64::MAX,
            i64::MIN,
            -1,
        ];
        cases.extend((0..5000).map(|_| rng.i64(..)));
        for ns in cases {
            let t = Timestamp::from_nanos(ns);
            let mut out = Vec::new();
            timestamp(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), format!("\"{t}\""), "{ns}");
        }
    }

    /// Found by the `record_roundtrip` fuzz target: without serde_json's
    /// `float_roundtrip` feature this float reads back one bit off, so a record
    /// holding it would not re-serialize to its own bytes.
    #[test]
    fn floats_read_back_exactly() {
        for text in ["1.4672077102676882e-307", "0.1", "1e+300", "-0.0", "5e-324"] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut out = Vec::new();
            value(&mut out, &v);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn values_write_like_serde_json() {
        let v = serde_json::json!({
            "z": 1, "a": [1.5, -2, 18446744073709551615u64, 1e300, -0.0, null, true, false],
            "nested": {"k\"ey": "v\nal", "empty": {}, "list": []}, "f": 0.1
        });
        let mut out = Vec::new();
        value(&mut out, &v);
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
    }
}
