//! A record's metadata: field name to JSON value, in catalog order.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;
use smallvec::SmallVec;

/// The metadata of a record: each field's name and JSON value, in catalog order.
/// Serializes as a JSON object. The names of records built by this process are
/// borrowed from the catalog compiled into the binary, and up to four fields are
/// held inline: no allocation per record for the map itself.
///
/// ```
/// use audit_runtime::Metadata;
/// let mut m = Metadata::new();
/// m.insert("app_nid", "inv-track".into());
/// m.insert("id", 4.into());
/// assert_eq!(m["app_nid"], "inv-track");
/// assert_eq!(m.get("id"), Some(&serde_json::json!(4)));
/// assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"app_nid":"inv-track","id":4}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata(SmallVec<[(Cow<'static, str>, Json); 4]>);

impl Metadata {
    /// No fields.
    pub fn new() -> Self {
        Metadata(SmallVec::new())
    }

    /// No fields, room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        Metadata(SmallVec::with_capacity(n))
    }

    /// Sets a field, in place if it exists, else last.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: Json) {
        let name = name.into();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }

    /// Appends a field known not to be there yet (catalog field names are unique).
    pub(crate) fn push(&mut self, name: &'static str, value: Json) {
        debug_assert!(!self.contains_key(name), "duplicate field `{name}`");
        self.0.push((Cow::Borrowed(name), value));
    }

    /// A field's value.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value of the `i`-th field, to replace.
    pub(crate) fn value_at_mut(&mut self, i: usize) -> &mut Json {
        &mut self.0[i].1
    }

    /// Whether the field exists.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The fields, in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields as a JSON object.
    pub fn to_json(&self) -> Json {
        Json::Object(
            self.iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect(),
        )
    }
}

impl std::ops::Index<&str> for Metadata {
    type Output = Json;

    /// The value of a field; panics if the record has no such field.
    fn index(&self, name: &str) -> &Json {
        self.get(name)
            .unwrap_or_else(|| panic!("the record has no metadata field `{name}`"))
    }
}

/// The fields of a [`Metadata`], in order.
///
/// ```
/// let m: audit_runtime::Metadata = [("id", 4.into()), ("name", "Books".into())].into_iter().collect();
/// let names: Vec<&str> = m.iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["id", "name"]);
/// ```
#[derive(Debug, Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (Cow<'static, str>, Json)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Json);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&**k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a str, &'a Json);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<K: Into<Cow<'static, str>>> FromIterator<(K, Json)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, Json)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a metadata object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Metadata, A::Error> {
                let mut m = Metadata::with_capacity(access.size_hint().unwrap_or(0));
                while let Some((k, v)) = access.next_entry::<String, Json>()? {
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn insert_replaces_in_place_and_keeps_order() {
        let mut m = Metadata::new();
        m.insert("b", json!(1));
        m.insert("a", json!(2));
        m.insert("b", json!(3));
        let fields: Vec<(&str, &Json)> = m.iter().collect();
        assert_eq!(fields, [("b", &json!(3)), ("a", &json!(2))]);
        assert_eq!(m.len(), 2);
        assert!(m.contains_key("a") && !m.contains_key("c"));
    }

    #[test]
    fn json_round_trip_keeps_order_and_the_last_duplicate() {
        let m: Metadata = serde_json::from_str(r#"{"z":1,"a":{"x":[1,2]},"z":3}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"z":3,"a":{"x":[1,2]}}"#
        );
        assert_eq!(m.to_json(), json!({"z": 3, "a": {"x": [1, 2]}}));
        assert!(serde_json::from_str::<Metadata>("[1]").is_err());
    }

    #[test]
    #[should_panic(expected = "no metadata field `missing`")]
    fn indexing_a_missing_field_names_it() {
        let _ = &Metadata::new()["missing"];
    }
}
