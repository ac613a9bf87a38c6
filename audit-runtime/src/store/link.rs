//! The store's own chain: each row's link covers the previous row's link and the
//! row's record hash, in insertion order.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::json::hex32;

/// A row's link: 32 bytes, stored as 64 lowercase hex digits.
///
/// ```
/// use audit_runtime::store::{ChainKey, Link};
/// let key = ChainKey::none();
/// let first = key.link(&Link::GENESIS, "ab".repeat(32).as_str());
/// assert_eq!(first.to_string().parse::<Link>().unwrap(), first);
/// assert_ne!(first, Link::GENESIS);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Link(pub [u8; 32]);

impl Link {
    /// The link "before" the first row of a store.
    pub const GENESIS: Link = Link([0; 32]);
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&hex32(&self.0)).expect("hex digits are ASCII"))
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Link({self})")
    }
}

impl std::str::FromStr for Link {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(format!("a link has 64 hex digits, `{s}` has {}", s.len()));
        }
        let out: [u8; 32] = crate::json::unhex(s)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("`{s}` is not hex"))?;
        Ok(Link(out))
    }
}

/// How links are computed: plain SHA-256, or HMAC-SHA-256 with a secret key (then
/// repairing a tampered chain needs the key).
///
/// ```
/// use audit_runtime::store::{ChainKey, Link};
/// let h = "0".repeat(64);
/// let plain = ChainKey::none().link(&Link::GENESIS, &h);
/// let keyed = ChainKey::hmac(b"secret").link(&Link::GENESIS, &h);
/// assert_ne!(plain, keyed);
/// assert_ne!(ChainKey::hmac(b"secret").fingerprint(), ChainKey::hmac(b"other").fingerprint());
/// ```
#[derive(Clone, Default)]
pub struct ChainKey(Option<Vec<u8>>);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ChainKey(hmac-sha256, <secret>)"
        } else {
            "ChainKey(sha256)"
        })
    }
}

impl ChainKey {
    /// Plain SHA-256 links.
    pub fn none() -> Self {
        ChainKey(None)
    }

    /// HMAC-SHA-256 links under `key`. The stores refuse a key shorter than
    /// [`ChainKey::MIN_BYTES`] when they open (see [`ChainKey::check_strength`]).
    pub fn hmac(key: impl AsRef<[u8]>) -> Self {
        ChainKey(Some(key.as_ref().to_vec()))
    }

    /// The shortest HMAC key a store accepts: 32 bytes, SHA-256's own size. The
    /// key's fingerprint is stored with the chain, so anyone who can read the store
    /// can test guesses of a weak key offline; 32 random bytes cannot be guessed.
    pub const MIN_BYTES: usize = 32;

    /// Refuses an HMAC key shorter than [`ChainKey::MIN_BYTES`].
    ///
    /// ```
    /// use audit_runtime::store::ChainKey;
    /// assert!(ChainKey::hmac(b"password1").check_strength().is_err());
    /// assert!(ChainKey::hmac([7u8; 32]).check_strength().is_ok());
    /// assert!(ChainKey::none().check_strength().is_ok());
    /// ```
    pub fn check_strength(&self) -> Result<(), super::StoreError> {
        match &self.0 {
            Some(key) if key.len() < Self::MIN_BYTES => {
                Err(super::StoreError::WeakKey { bytes: key.len() })
            }
            _ => Ok(()),
        }
    }

    /// Whether links are keyed.
    pub fn is_keyed(&self) -> bool {
        self.0.is_some()
    }

    /// The name stored with the chain: `sha256` or `hmac-sha256`.
    pub fn algorithm(&self) -> &'static str {
        if self.is_keyed() {
            "hmac-sha256"
        } else {
            "sha256"
        }
    }

    /// The link of a row whose record hash is `record_hash`, after `prev`.
    pub fn link(&self, prev: &Link, record_hash: &str) -> Link {
        match &self.0 {
            None => {
                let mut h = Sha256::new();
                h.update(prev.0);
                h.update(record_hash.as_bytes());
                Link(h.finalize().into())
            }
            Some(key) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(&prev.0);
                mac.update(record_hash.as_bytes());
                Link(mac.finalize().into_bytes().into())
            }
        }
    }

    /// A value stored beside a keyed chain so that opening it with another key is
    /// refused up front (it reveals nothing about the key).
    pub fn fingerprint(&self) -> String {
        self.link(&Link::GENESIS, "audit chain key check")
            .to_string()
    }
}

/// Whether a connection may write and verify a store's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyState {
    Usable,
    /// The store is keyed and no key was given: reading only.
    Missing,
}

/// Compares the key a store was opened with to the algorithm and key fingerprint the
/// store recorded on its first open.
pub(crate) fn key_state(
    algorithm: &str,
    fingerprint: Option<&str>,
    key: &ChainKey,
) -> Result<KeyState, super::StoreError> {
    use super::StoreError::WrongKey;
    match (algorithm == "hmac-sha256", key.is_keyed()) {
        (false, false) => Ok(KeyState::Usable),
        (true, false) => Ok(KeyState::Missing),
        (false, true) => Err(WrongKey(
            "the store's chain is not keyed (sha256): open it without an HMAC key".into(),
        )),
        (true, true) if fingerprint == Some(&*key.fingerprint()) => Ok(KeyState::Usable),
        (true, true) => Err(WrongKey("this HMAC key is not the store's key".into())),
    }
}

impl KeyState {
    /// An error unless the chain can be written and verified.
    pub(crate) fn require(self) -> Result<(), super::StoreError> {
        match self {
            KeyState::Usable => Ok(()),
            KeyState::Missing => Err(super::StoreError::WrongKey(
                "the store's chain is keyed (hmac-sha256): open it with the key to write or verify"
                    .into(),
            )),
        }
    }
}
