//! The stream's messages, as the sink writes them and the ingest reads them.
//!
//! A message holds the JSON of one record or, from a sink whose
//! [`records_per_message`](super::NatsOptions::records_per_message) is above one, of
//! several records published on the same subject, one per line (JSON Lines: a record's
//! JSON never holds a raw newline). Its `Nats-Msg-Id` is the record's id, or the first
//! record's id and the count (`<id>+<n>`), so the stream drops the messages of a
//! retried batch as it drops retried records.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::super::{Batch, Entry, Item};
use crate::record::Record;

/// A message to publish.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) subject: String,
    /// The `Nats-Msg-Id` header.
    pub(super) id: String,
    pub(super) payload: Bytes,
}

/// The messages of a batch: one per record when `per_message` is 1, in the batch's
/// order. Otherwise the records of each subject, in their order, are put together
/// `per_message` at a time and at most `max_bytes` of payload (a record larger than
/// that goes alone); subjects follow one another in the order of their first record.
pub(super) fn messages(
    batch: &Batch,
    subject: impl Fn(&Record) -> String,
    per_message: usize,
    max_bytes: usize,
) -> Vec<Outgoing> {
    if per_message <= 1 {
        return batch
            .iter()
            .map(|item| Outgoing {
                subject: subject(item.record()),
                id: item.record().id.hyphenated().to_string(),
                payload: shared(item),
            })
            .collect();
    }
    let mut subjects: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<&Item>)> = Vec::new();
    for item in batch {
        let name = subject(item.record());
        let at = *subjects.entry(name).or_insert_with_key(|name| {
            groups.push((name.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(item);
    }
    let mut out = Vec::new();
    for (subject, items) in groups {
        let mut start = 0;
        while start < items.len() {
            let mut end = start + 1;
            let mut bytes = items[start].json().len();
            while end < items.len()
                && end - start < per_message
                && bytes + 1 + items[end].json().len() <= max_bytes
            {
                bytes += 1 + items[end].json().len();
                end += 1;
            }
            out.push(message(subject.clone(), &items[start..end], bytes));
            start = end;
        }
    }
    out
}

/// One message of `items` (at least one), whose lines take `bytes`.
fn message(subject: String, items: &[&Item], bytes: usize) -> Outgoing {
    let first = items[0].record().id.hyphenated();
    if let [item] = items {
        return Outgoing {
            subject,
            id: first.to_string(),
            payload: shared(item),
        };
    }
    let mut payload = Vec::with_capacity(bytes);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            payload.push(b'\n');
        }
        payload.extend_from_slice(item.json().as_bytes());
    }
    Outgoing {
        subject,
        id: format!("{first}+{}", items.len()),
        payload: payload.into(),
    }
}

/// A record's JSON as a payload, shared with the batch rather than copied.
fn shared(item: &Item) -> Bytes {
    struct Json(Arc<Entry>);
    impl AsRef<[u8]> for Json {
        fn as_ref(&self) -> &[u8] {
            self.0.json.as_bytes()
        }
    }
    Bytes::from_owner(Json(Arc::clone(&item.entry)))
}

/// The lines of a message (empty ones skipped), each read as a record: an item whose
/// JSON is the line exactly as published (its hash covers it), or the line back when
/// it is not a record.
pub(crate) fn records(payload: &[u8]) -> impl Iterator<Item = Result<Item, &[u8]>> {
    payload
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| item_of(line).ok_or(line))
}

/// A line's record.
fn item_of(line: &[u8]) -> Option<Item> {
    let json = std::str::from_utf8(line).ok()?;
    let record: Record = serde_json::from_str(json).ok()?;
    let name = Arc::from(&*record.event);
    Some(Item::with_json(record, json.to_string(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(event: &'static str, n: u128) -> Item {
        let mut record: Record =
            serde_json::from_str(include_str!("../../record/example.json")).unwrap();
        record.event = event.into();
        record.id = uuid::Uuid::from_u128(n);
        Item::new(record, event)
    }

    fn subject(record: &Record) -> String {
        format!("audit.{}", record.event)
    }

    fn ids(messages: &[Outgoing]) -> Vec<(&str, &str)> {
        messages
            .iter()
            .map(|m| (m.subject.as_str(), m.id.as_str()))
            .collect()
    }

    fn read(m: &Outgoing) -> Vec<u128> {
        records(&m.payload)
            .map(|r| r.unwrap().record().id.as_u128())
            .collect()
    }

    #[test]
    fn one_record_per_message_shares_its_json() {
        let batch = [item("a", 1), item("b", 2), item("a", 3)];
        let out = messages(&batch, subject, 1, 1 << 20);
        assert_eq!(
            ids(&out),
            [
                ("audit.a", "00000000-0000-0000-0000-000000000001"),
                ("audit.b", "00000000-0000-0000-0000-000000000002"),
                ("audit.a", "00000000-0000-0000-0000-000000000003"),
            ]
        );
        assert_eq!(&out[1].payload[..], batch[1].json().as_bytes());
        assert_eq!(
            out[1].payload.as_ptr(),
            batch[1].json().as_ptr(),
            "not copied"
        );
    }

    #[test]
    fn records_of_a_subject_go_together_in_their_order() {
        let batch: Vec<Item> = (1..=7)
            .map(|n| item(if n % 3 == 0 { "b" } else { "a" }, n))
            .collect();
        let out = messages(&batch, subject, 3, 1 << 20);
        assert_eq!(
            ids(&out),
            [
                ("audit.a", "00000000-0000-0000-0000-000000000001+3"),
                ("audit.a", "00000000-0000-0000-0000-000000000005+2"),
                ("audit.b", "00000000-0000-0000-0000-000000000003+2"),
            ]
        );
        assert_eq!(read(&out[0]), [1, 2, 4]);
        assert_eq!(read(&out[1]), [5, 7]);
        assert_eq!(read(&out[2]), [3, 6]);
        // Each line is the record's JSON exactly.
        let lines: Vec<&[u8]> = out[0].payload.split(|&b| b == b'\n').collect();
        assert_eq!(lines[1], batch[1].json().as_bytes());
        // The same batch again makes the same messages: the stream drops them.
        assert_eq!(ids(&messages(&batch, subject, 3, 1 << 20)), ids(&out));
    }

    #[test]
    fn a_message_stays_under_the_byte_limit() {
        let batch: Vec<Item> = (1..=5).map(|n| item("a", n)).collect();
        let one = batch[0].json().len();
        let out = messages(&batch, subject, 100, 2 * one + 1);
        assert_eq!(
            out.iter().map(read).collect::<Vec<_>>(),
            [vec![1, 2], vec![3, 4], vec![5]]
        );
        assert!(out.iter().all(|m| m.payload.len() <= 2 * one + 1));
        assert_eq!(
            out[2].id, "00000000-0000-0000-0000-000000000005",
            "one record: its id"
        );
        // A record larger than the limit goes alone (the server says whether it fits).
        let out = messages(&batch, subject, 100, 10);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn a_line_that_is_not_a_record_is_given_back() {
        let batch = [item("a", 1), item("a", 2)];
        let mut payload = batch[0].json().as_bytes().to_vec();
        payload.extend_from_slice(b"\nnot json\n\n");
        payload.extend_from_slice(batch[1].json().as_bytes());
        payload.push(b'\n');
        let lines: Vec<_> = records(&payload).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].as_ref().unwrap().json(), batch[0].json());
        assert_eq!(lines[1].as_ref().unwrap_err(), b"not json");
        assert_eq!(lines[2].as_ref().unwrap().json(), batch[1].json());
        assert!(records(b"\xff\xfe").next().unwrap().is_err());
    }
}
