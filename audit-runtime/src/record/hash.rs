//! The type of a record's `hash` and `prev_hash` (public as
//! `integrity::ChainHash`): defined beside the record, which holds it, so that the
//! record does not depend on the chain that computes it.

use crate::json;

/// A SHA-256 of the chain, as the 64 lowercase hex digits records carry in `hash` and
/// `prev_hash`. Held inline (no allocation per record); reads as a `&str`.
///
/// ```
/// use audit_runtime::integrity::ChainHash;
/// let h: ChainHash = "ab".repeat(32).parse().unwrap();
/// assert_eq!(h.len(), 64);
/// assert!(h.starts_with("abab"));
/// assert!("not hex".parse::<ChainHash>().is_err());
/// assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{h}\""));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 64]);

impl ChainHash {
    /// The hex of a digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        ChainHash(json::hex32(digest))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        // SAFETY: only ever built from lowercase hex digits (ASCII).
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl std::ops::Deref for ChainHash {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ChainHash {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ChainHash {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ChainHash {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Text that is not 64 lowercase hex digits.
///
/// ```
/// use audit_runtime::integrity::{ChainHash, NotAHash};
/// assert_eq!("ABC".parse::<ChainHash>(), Err(NotAHash("ABC".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAHash(pub String);

impl std::fmt::Display for NotAHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a SHA-256 in 64 lowercase hex digits: {:?}", self.0)
    }
}

impl std::error::Error for NotAHash {}

impl std::str::FromStr for ChainHash {
    type Err = NotAHash;
    fn from_str(s: &str) -> Result<Self, NotAHash> {
        let bytes: [u8; 64] = s
            .as_bytes()
            .try_into()
            .map_err(|_| NotAHash(s.to_owned()))?;
        if bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(ChainHash(bytes))
        } else {
            Err(NotAHash(s.to_owned()))
        }
    }
}

impl serde::Serialize for ChainHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ChainHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
