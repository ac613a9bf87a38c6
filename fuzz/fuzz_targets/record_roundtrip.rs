//! Arbitrary records (any strings, times over the whole range, NaN, deep and large
//! JSON) through the record encoder, the limits and the hash chain: the JSON is
//! `serde_json`'s, fits the size limit, reads back to the same bytes, and its hash
//! recomputes. Nothing may panic.
#![no_main]

use audit_runtime::integrity::{Chain, hash_of_json};
use audit_runtime::{Record, limits};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value as Json, json};

fn string(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 50)? {
        // Now and then a huge one.
        let unit: String = u.arbitrary()?;
        return Ok(unit.repeat(u.int_in_range(1000..=300_000)?));
    }
    u.arbitrary()
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Json> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Json::Null,
        1 => Json::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<u64>()?),
        4 => serde_json::Number::from_f64(u.arbitrary()?).map_or(json!("NaN"), Json::Number),
        5 => Json::String(string(u)?),
        6 if depth < 400 => {
            let n = u.int_in_range(0..=3)?;
            Json::Array((0..n).map(|_| value(u, depth + 1)).collect::<Result<_>>()?)
        }
        _ if depth < 400 => {
            let mut m = Map::new();
            for _ in 0..u.int_in_range(0..=3)? {
                m.insert(u.arbitrary()?, value(u, depth + 1)?);
            }
            Json::Object(m)
        }
        _ => Json::Null,
    })
}

fn record(u: &mut Unstructured<'_>) -> Result<Record> {
    let time: i64 = u.arbitrary()?;
    let mut r: Record = serde_json::from_value(json!({
        "id": "01900000-0000-7000-8000-000000000000",
        "time": audit_runtime::Timestamp::from_nanos(time).to_string(),
        "event": string(u)?, "code": u.arbitrary::<u32>()?, "category": string(u)?,
        "level": "info", "outcome": "failure", "error": string(u)?, "duration_ns": u.arbitrary::<u64>()?,
        "description": string(u)?, "actor": {"id": string(u)?, "email": string(u)?, "kind": "user"},
        "impersonator": null, "tenant": string(u)?, "environment": null, "source": null,
        "request": {"user_agent": string(u)?}, "entity": {"type": "t", "type_code": 1, "id": value(u, 0)?},
        "changes": {"previous": value(u, 0)?, "current": value(u, 0)?, "difference": {"a": [value(u, 0)?, value(u, 0)?]}},
        "metadata": {},
        "site": {"module": "m", "file": "f", "line": 1, "function": "f"}, "prev_hash": null, "hash": null
    }))
    .expect("a record");
    for i in 0..u.int_in_range(0..=6)? {
        r.metadata.insert(format!("f{i}"), value(u, 0)?);
    }
    Ok(r)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mut r) = record(&mut u) else { return };
    limits::enforce(&mut r);
    let json = Chain::new().link(&mut r);
    assert_eq!(json, serde_json::to_string(&r).unwrap());
    assert!(json.len() <= limits::MAX_RECORD_BYTES, "{} bytes", json.len());
    let back: Record = serde_json::from_str(&json).expect("every record written reads back");
    assert_eq!(back.to_json(), json);
    let (stored, computed) = hash_of_json(&json).expect("ends like a record");
    assert_eq!(stored, Some(computed.as_str()));
});
