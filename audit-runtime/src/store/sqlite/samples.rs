//! What a compression dictionary may learn from (`compress.rs`): records cut down
//! to the words several tenants share. A trained dictionary is made of pieces of
//! its samples and outlives them; cut this way, it holds no tenant's own data.

use std::collections::HashMap;

use serde_json::Value as Json;

/// How many tenants must hold a word at the same place for it to be learnt.
const SHARED_BY: usize = 3;

/// What a dictionary may learn from `records`: each record with only the words
/// that records of at least [`SHARED_BY`] tenants hold at the same place (a record
/// without a tenant counts as a tenant of its own). A word is a run of letters or a
/// run of digits; punctuation, keys, `null`s and `bool`s stay; numbers are words.
/// So no dictionary holds a tenant's own data, and erasing a tenant leaves nothing
/// of it behind. Texts that are not JSON objects (erased rows) are left out.
pub(super) fn shared_words(records: &[String]) -> Vec<String> {
    let (mut parsed, tenants): (Vec<Json>, Vec<String>) = records
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let record: Json = serde_json::from_str(text).ok()?;
            let tenant = match record.get("tenant") {
                Some(Json::String(t)) => format!("t:{t}"),
                _ => format!("#{i}"),
            };
            record.is_object().then_some((record, tenant))
        })
        .unzip();
    let mut holders: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for (record, tenant) in parsed.iter().zip(&tenants) {
        visit(record, &mut String::new(), &mut |path, word| {
            let seen = holders
                .entry((path.to_owned(), word.to_owned()))
                .or_default();
            if seen.len() < SHARED_BY && !seen.contains(&tenant.as_str()) {
                seen.push(tenant);
            }
        });
    }
    let shared = |path: &str, word: &str| {
        holders
            .get(&(path.to_owned(), word.to_owned()))
            .is_some_and(|t| t.len() >= SHARED_BY)
    };
    parsed
        .iter_mut()
        .filter_map(|record| {
            keep_shared(record, &mut String::new(), &shared);
            serde_json::to_string(record).ok()
        })
        .collect()
}

/// Calls `each(path, word)` for every word of every value under `value`.
fn visit(value: &Json, path: &mut String, each: &mut dyn FnMut(&str, &str)) {
    match value {
        Json::String(s) => words(s).filter(|w| is_word(w)).for_each(|w| each(path, w)),
        Json::Number(n) => each(path, &n.to_string()),
        Json::Array(items) => under(path, "[]", |p| items.iter().for_each(|v| visit(v, p, each))),
        Json::Object(fields) => fields
            .iter()
            .for_each(|(k, v)| under(path, k, |p| visit(v, p, each))),
        Json::Bool(_) | Json::Null => {}
    }
}

/// Drops from every value under `value` the words `shared` does not keep (numbers
/// not kept become 0).
fn keep_shared(value: &mut Json, path: &mut String, shared: &dyn Fn(&str, &str) -> bool) {
    match value {
        Json::String(s) => {
            *s = words(s)
                .filter(|w| !is_word(w) || shared(path, w))
                .collect();
        }
        Json::Number(n) => {
            if !shared(path, &n.to_string()) {
                *n = 0.into();
            }
        }
        Json::Array(items) => under(path, "[]", |p| {
            items.iter_mut().for_each(|v| keep_shared(v, p, shared))
        }),
        Json::Object(fields) => fields
            .iter_mut()
            .for_each(|(k, v)| under(path, k, |p| keep_shared(v, p, shared))),
        Json::Bool(_) | Json::Null => {}
    }
}

/// Runs `f` with `key` appended to `path`.
fn under(path: &mut String, key: &str, f: impl FnOnce(&mut String)) {
    let len = path.len();
    path.push('/');
    path.push_str(key);
    f(path);
    path.truncate(len);
}

/// A text cut into runs of letters, runs of digits and single other characters.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let class = |c: char| (c.is_alphabetic(), c.is_numeric());
        let len = if is_word_char(first) {
            rest.find(|c: char| class(c) != class(first))
                .unwrap_or(rest.len())
        } else {
            first.len_utf8()
        };
        let (word, tail) = rest.split_at(len);
        rest = tail;
        Some(word)
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric()
}

/// Whether a piece of [`words`] is a word (not a single other character).
fn is_word(piece: &str) -> bool {
    piece.chars().next().is_some_and(is_word_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tenant: &str, actor: &str) -> String {
        format!(
            r#"{{"event":"app_add","tenant":"{tenant}","actor":{{"email":"{actor}@example.com","n":7}},"ids":[12]}}"#
        )
    }

    #[test]
    fn samples_keep_only_the_words_three_tenants_hold_at_the_same_place() {
        let records = vec![
            record("t-1", "anna"),
            record("t-2", "bert"),
            record("t-3", "carl"),
            record("t-3", "carl"),
            "null".to_string(),
        ];
        let cut = shared_words(&records);
        assert_eq!(cut.len(), 4);
        assert_eq!(
            cut[0],
            r#"{"event":"app_add","tenant":"t-","actor":{"email":"@example.com","n":7},"ids":[12]}"#,
            "`add` is held by three tenants but `anna`, `1` by one"
        );
        // Without tenants every record counts as its own.
        let alone: Vec<String> = ["x", "x", "x", "y"]
            .iter()
            .map(|a| format!(r#"{{"actor":"{a}-9"}}"#))
            .collect();
        let alone = shared_words(&alone);
        assert_eq!(alone[0], r#"{"actor":"x-9"}"#);
        assert_eq!(alone[3], r#"{"actor":"-9"}"#);
    }

    #[test]
    fn words_are_runs_of_letters_or_digits() {
        let w: Vec<&str> = words("user42@exämple.com 山田太郎").collect();
        assert_eq!(
            w,
            ["user", "42", "@", "exämple", ".", "com", " ", "山田太郎"]
        );
    }
}
