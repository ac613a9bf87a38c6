//! Signed checkpoints: a witness of a store's head kept outside the database.
//!
//! `verify` proves that the rows a store holds form an unbroken chain; it cannot see
//! that the newest rows were removed, or that someone with the database (and, for a
//! plain SHA-256 chain, nothing else) rewrote the whole history consistently. A
//! checkpoint records, at one moment, the store's identity, its chain algorithm, the
//! newest row's position and link, how many rows it held and how many had been
//! purged, signed with an Ed25519 key the database never sees. Checked later against
//! the store ([`Store::check_checkpoints`](super::Store::check_checkpoints)), each
//! checkpoint either still holds or is named broken: rows removed at the end, history
//! rewritten, rows missing, another store.
//!
//! The text format follows the spirit of transparency-log checkpoints (Sigstore Rekor,
//! C2SP signed notes): a few `name value` lines, a blank line, then the signature
//! line, which covers the body's exact bytes.
//!
//! ```text
//! audit-checkpoint/v1
//! store 0193a1c2-…
//! chain hmac-sha256
//! seq 1042
//! link 3fa9…(64 hex digits)
//! rows 1000
//! purged 42
//! time 2026-11-30T12:00:00.000000000Z
//!
//! signature ed25519 <key id: 16 hex digits> <signature: 128 hex digits>
//! ```
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[cfg(feature = "sqlite")] {
//! use audit_runtime::store::{CheckpointKey, Checkpoint, Sqlite, Store};
//! let dir = tempfile::tempdir()?;
//! let mut store = Sqlite::open(dir.path().join("audit.db"))?;
//! let key = CheckpointKey::generate()?;
//! let (checkpoint, verification) = store.checkpoint()?;
//! assert!(verification.is_intact());
//! let text = checkpoint.sign(&key);
//! // Later, with the public key only:
//! let opened = Checkpoint::open(&text, &key.public())?;
//! let (_, findings) = store.check_checkpoints(&[opened])?;
//! assert!(findings.iter().all(|f| f.holds()));
//! # }
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::StoreError;
use super::link::Link;
use super::verify::{Verification, Witnessed};
use crate::json::{hex, unhex};
use crate::time::Timestamp;

/// The first line of a checkpoint.
const HEADER: &str = "audit-checkpoint/v1";
/// The first word of a secret key file.
const SECRET_HEADER: &str = "audit-checkpoint-secret-key/v1 ed25519";
/// The first word of a public key file.
const PUBLIC_HEADER: &str = "audit-checkpoint-public-key/v1 ed25519";

/// What a store looked like at one moment (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The store's identity (`audit_meta.store_id`).
    pub store: String,
    /// `sha256` or `hmac-sha256`.
    pub chain: String,
    /// The newest row's position (0: the store was empty and never purged).
    pub seq: i64,
    /// Its link (the purge anchor's, or genesis, when no row was left).
    pub link: Link,
    /// Rows the store held, all at or before `seq`.
    pub rows: u64,
    /// Rows purged before the checkpoint, in total.
    pub purged: u64,
    /// When the checkpoint was taken.
    pub time: Timestamp,
}

/// A checkpoint that cannot be read or whose signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// Not a checkpoint of this format; the message says what is wrong.
    Malformed(String),
    /// Signed by another key than the one given (key ids differ).
    OtherKey {
        /// The id of the key given.
        expected: String,
        /// The id named in the checkpoint.
        found: String,
    },
    /// The signature does not match the body: the checkpoint was altered.
    BadSignature,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Malformed(m) => write!(f, "not a valid checkpoint: {m}"),
            CheckpointError::OtherKey { expected, found } => write!(
                f,
                "the checkpoint is signed by key {found}, not by the trusted key {expected}"
            ),
            CheckpointError::BadSignature => {
                write!(
                    f,
                    "the checkpoint's signature does not match: it was altered"
                )
            }
        }
    }
}

impl std::error::Error for CheckpointError {}

/// The secret half of a checkpoint signing key (Ed25519). Keep it away from the
/// database it witnesses; publish its [`PublicKey`] to whoever verifies.
pub struct CheckpointKey(SigningKey);

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointKey({})", self.public().id())
    }
}

/// The public half of a [`CheckpointKey`]: verifies checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl CheckpointKey {
    /// A new random key (from the operating system's generator).
    pub fn generate() -> std::io::Result<CheckpointKey> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(CheckpointKey(SigningKey::from_bytes(&seed)))
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The key file's text (keep it private).
    pub fn to_text(&self) -> String {
        format!("{SECRET_HEADER} {}\n", hex(self.0.as_bytes()))
    }

    /// Reads a key from [`CheckpointKey::to_text`]'s format.
    pub fn from_text(text: &str) -> Result<CheckpointKey, CheckpointError> {
        let seed = key_bytes(text, SECRET_HEADER, "secret key")?;
        Ok(CheckpointKey(SigningKey::from_bytes(&seed)))
    }

    /// Reads a key file.
    pub fn read(path: &Path) -> Result<CheckpointKey, StoreError> {
        let text = std::fs::read_to_string(path)?;
        CheckpointKey::from_text(&text).map_err(|e| StoreError::Checkpoint(e.to_string()))
    }

    /// Writes the key to a new file readable by its owner only (an existing file is
    /// never overwritten).
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(self.to_text().as_bytes())?;
        file.sync_all()?;
        Ok(())
    }
}

impl PublicKey {
    /// The key's id: the first 8 bytes of the SHA-256 of the key, in hex.
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// The public key file's text.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_HEADER} {}\n", hex(self.0.as_bytes()))
    }

    /// Reads a public key from [`PublicKey::to_text`]'s format.
    pub fn from_text(text: &str) -> Result<PublicKey, CheckpointError> {
        let bytes = key_bytes(text, PUBLIC_HEADER, "public key")?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| CheckpointError::Malformed(format!("public key: {e}")))
    }

    /// Reads a public key file.
    pub fn read(path: &Path) -> Result<PublicKey, StoreError> {
        let text = std::fs::read_to_string(path)?;
        PublicKey::from_text(&text).map_err(|e| StoreError::Checkpoint(e.to_string()))
    }
}

impl Checkpoint {
    /// The signed body: the header and one `name value` line per field.
    pub fn body(&self) -> String {
        format!(
            "{HEADER}\nstore {}\nchain {}\nseq {}\nlink {}\nrows {}\npurged {}\ntime {}\n",
            self.store, self.chain, self.seq, self.link, self.rows, self.purged, self.time
        )
    }

    /// The checkpoint's text, signed with `key`.
    pub fn sign(&self, key: &CheckpointKey) -> String {
        let body = self.body();
        let signature = key.0.sign(body.as_bytes());
        format!(
            "{body}\nsignature ed25519 {} {}\n",
            key.public().id(),
            hex(&signature.to_bytes())
        )
    }

    /// Reads a signed checkpoint, checking its signature against the trusted `key`.
    pub fn open(text: &str, key: &PublicKey) -> Result<Checkpoint, CheckpointError> {
        let malformed = |m: &str| CheckpointError::Malformed(m.to_string());
        let (body, signature) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the signature"))?;
        let body = format!("{body}\n");
        let mut words = signature.trim_end().split(' ');
        let (Some("signature"), Some("ed25519"), Some(id), Some(sig), None) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            return Err(malformed(
                "the last line is not `signature ed25519 <key id> <signature>`",
            ));
        };
        if id != key.id() {
            return Err(CheckpointError::OtherKey {
                expected: key.id(),
                found: id.to_string(),
            });
        }
        let sig: [u8; 64] = unhex(sig)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("the signature is not 128 hex digits"))?;
        key.0
            .verify(body.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| CheckpointError::BadSignature)?;
        Checkpoint::parse_body(&body)
    }

    fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |m: String| CheckpointError::Malformed(m);
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(malformed(format!("the first line is not `{HEADER}`")));
        }
        let mut field = |name: &str| -> Result<String, CheckpointError> {
            match lines.next().and_then(|l| l.split_once(' ')) {
                Some((n, v)) if n == name => Ok(v.to_string()),
                _ => Err(malformed(format!("line `{name} …` is missing"))),
            }
        };
        let number = |name: &str, v: String| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| malformed(format!("`{name}` is not a number: {v}")))
        };
        let store = field("store")?;
        let chain = field("chain")?;
        let seq = number("seq", field("seq")?)?;
        let link = field("link")?
            .parse()
            .map_err(|e| malformed(format!("`link`: {e}")))?;
        let rows = number("rows", field("rows")?)? as u64;
        let purged = number("purged", field("purged")?)? as u64;
        let time = field("time")?
            .parse()
            .map_err(|e| malformed(format!("`time`: {e}")))?;
        if lines.next().is_some() {
            return Err(malformed("unexpected lines after `time`".into()));
        }
        Ok(Checkpoint {
            store,
            chain,
            seq,
            link,
            rows,
            purged,
            time,
        })
    }
}

/// What a verification walk saw, for checkpoints: the store's identity, its head,
/// and the rows the checkpoints name. Made by [`super::Store::witness`].
#[derive(Debug, Clone)]
pub struct Witness {
    /// The store's identity, if it has one yet.
    pub(crate) store: Option<String>,
    /// The newest row walked intact, or the anchor, or (0, genesis).
    pub(crate) head: (i64, Link),
    /// One entry per position asked for.
    pub(crate) at: Vec<Witnessed>,
    /// The chain's verification.
    pub verification: Verification,
}

impl Witness {
    /// The checkpoint of this walk's head (taken now).
    pub(crate) fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let store = self.store.clone().ok_or_else(|| {
            StoreError::Checkpoint(
                "the store has no identity yet: open it once with a role that may write".into(),
            )
        })?;
        let purged = self.verification.anchor.as_ref().map_or(0, |a| a.purged);
        Ok(Checkpoint {
            store,
            chain: self.verification.algorithm.to_string(),
            seq: self.head.0,
            link: self.head.1,
            rows: self.verification.rows,
            purged,
            time: Timestamp::now(),
        })
    }

    /// How `checkpoint` fares against this walk.
    pub(crate) fn check(&self, checkpoint: &Checkpoint) -> Finding {
        let found = self.store.as_deref().unwrap_or("(none)");
        if found != checkpoint.store {
            return Finding::OtherStore {
                expected: checkpoint.store.clone(),
                found: found.to_string(),
            };
        }
        if self.verification.algorithm != checkpoint.chain {
            return Finding::Relabelled {
                expected: checkpoint.chain.clone(),
                found: self.verification.algorithm.to_string(),
            };
        }
        if checkpoint.seq == 0 {
            return Finding::Holds;
        }
        let anchor = self.verification.anchor.as_ref();
        let purged_now = anchor.map_or(0, |a| a.purged);
        if purged_now < checkpoint.purged {
            return Finding::Rewritten {
                seq: checkpoint.seq,
                detail: format!(
                    "the store counts {purged_now} purged rows, fewer than the {} the checkpoint saw",
                    checkpoint.purged
                ),
            };
        }
        if let Some(a) = anchor.filter(|a| a.seq >= checkpoint.seq) {
            // A purge since removed the checkpoint's row: it can be compared only when
            // the purge stopped exactly there.
            return if a.seq == checkpoint.seq && a.link != checkpoint.link {
                Finding::Rewritten {
                    seq: checkpoint.seq,
                    detail: "the purge anchor's link differs from the checkpoint's".into(),
                }
            } else {
                Finding::Purged { anchor_seq: a.seq }
            };
        }
        let Some(seen) = self.at.iter().find(|w| w.seq == checkpoint.seq) else {
            return Finding::Rewritten {
                seq: checkpoint.seq,
                detail: "the row was not walked".into(),
            };
        };
        let Some(link) = seen.link else {
            let last = self.head.0;
            return if self.verification.is_intact() && last < checkpoint.seq {
                Finding::Truncated {
                    checkpoint_seq: checkpoint.seq,
                    last_seq: last,
                }
            } else {
                Finding::Rewritten {
                    seq: checkpoint.seq,
                    detail: "the row is gone".into(),
                }
            };
        };
        if link != checkpoint.link {
            return Finding::Rewritten {
                seq: checkpoint.seq,
                detail: "its link differs from the checkpoint's".into(),
            };
        }
        let expected = checkpoint.rows - (purged_now - checkpoint.purged).min(checkpoint.rows);
        if seen.rows_upto != expected {
            return Finding::RowsMissing {
                expected,
                found: seen.rows_upto,
            };
        }
        Finding::Holds
    }
}

/// How one checkpoint fares against the store now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The store still holds everything the checkpoint covered.
    Holds,
    /// A purge since removed the checkpoint's row (a recorded, verified removal).
    Purged {
        /// The position of the purge's anchor.
        anchor_seq: i64,
    },
    /// The newest rows were removed: the store ends before the checkpoint's row.
    Truncated {
        /// The checkpoint's newest row.
        checkpoint_seq: i64,
        /// The store's newest row now (0: none).
        last_seq: i64,
    },
    /// History was rewritten: the store's chain no longer passes through the
    /// checkpoint's link.
    Rewritten {
        /// The checkpoint's row.
        seq: i64,
        /// What differs.
        detail: String,
    },
    /// Rows up to the checkpoint's row are missing (or were added), beyond what
    /// purges account for.
    RowsMissing {
        /// Rows there should be.
        expected: u64,
        /// Rows there are.
        found: u64,
    },
    /// Another store: its identity is not the checkpoint's.
    OtherStore {
        /// The checkpoint's store.
        expected: String,
        /// This store.
        found: String,
    },
    /// The chain's algorithm changed (a keyed chain relabelled, or the reverse).
    Relabelled {
        /// The checkpoint's.
        expected: String,
        /// The store's now.
        found: String,
    },
}

impl Finding {
    /// Whether the store still holds what the checkpoint covered.
    pub fn holds(&self) -> bool {
        matches!(self, Finding::Holds | Finding::Purged { .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Holds => write!(f, "holds"),
            Finding::Purged { anchor_seq } => write!(
                f,
                "holds: its rows were since purged (anchor at row {anchor_seq})"
            ),
            Finding::Truncated {
                checkpoint_seq,
                last_seq,
            } => write!(
                f,
                "the newest rows were removed: the checkpoint saw row {checkpoint_seq}, the \
                 store now ends at row {last_seq}"
            ),
            Finding::Rewritten { seq, detail } => {
                write!(f, "history was rewritten at row {seq}: {detail}")
            }
            Finding::RowsMissing { expected, found } => write!(
                f,
                "rows are missing: {expected} expected up to the checkpoint's row, {found} found"
            ),
            Finding::OtherStore { expected, found } => write!(
                f,
                "another store: the checkpoint is of store {expected}, this is store {found}"
            ),
            Finding::Relabelled { expected, found } => write!(
                f,
                "the chain was relabelled: the checkpoint saw {expected}, the store says {found}"
            ),
        }
    }
}

/// Takes, signs and publishes a checkpoint of a store at a fixed interval, on a
/// thread of its own, so that the witness lives outside the database: in a
/// directory ([`to_directory`]), or wherever `publish` sends the signed text (an
/// HTTP endpoint, a NATS subject or KV bucket, an object store). A failed round (an
/// error, or a panic in `open` or `publish`) is reported on standard error and tried
/// again at the next interval; a broken chain is never checkpointed.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "sqlite")] {
/// use std::time::Duration;
/// use audit_runtime::store::{checkpoint, CheckpointKey, Sqlite};
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("audit.db");
/// drop(Sqlite::open(&db)?);
/// let publisher = checkpoint::Publisher::spawn(
///     move || Sqlite::open(&db),
///     CheckpointKey::generate()?,
///     Duration::from_secs(3600),
///     checkpoint::to_directory(dir.path().join("witness")),
/// );
/// publisher.stop(); // takes a last checkpoint first
/// // One at the start, one at the stop.
/// assert_eq!(std::fs::read_dir(dir.path().join("witness"))?.count(), 2);
/// # }
/// # Ok(()) }
/// ```
pub struct Publisher {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Publisher {
    /// Starts publishing: a checkpoint now, then every `interval`, and a last one on
    /// [`Publisher::stop`]. `open` opens the store for each round (a reader suffices).
    pub fn spawn<S, O, P>(
        mut open: O,
        key: CheckpointKey,
        interval: Duration,
        mut publish: P,
    ) -> Self
    where
        S: super::Store,
        O: FnMut() -> Result<S, StoreError> + Send + 'static,
        P: FnMut(&Checkpoint, &str) -> Result<(), String> + Send + 'static,
    {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("audit-checkpoint".into())
            .spawn(move || {
                let mut round = || {
                    // `open` and `publish` are the user's code: a panic in either costs
                    // this round, not the publisher.
                    let published = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        open()
                            .and_then(|mut store| store.checkpoint())
                            .map_err(|e| e.to_string())
                            .and_then(|(cp, _)| publish(&cp, &cp.sign(&key)))
                    }))
                    .unwrap_or_else(|p| Err(format!("panicked: {}", crate::panic::message(&*p))));
                    if let Err(e) = published {
                        eprintln!("audit: checkpoint not published: {e}");
                    }
                };
                round();
                // Until stopped (the sender dropped), then one last round.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    round();
                }
                round();
            })
            .expect("the checkpoint thread starts");
        Publisher { stop, thread }
    }

    /// Stops after publishing one last checkpoint (the sender's drop wakes the
    /// thread at once).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// A `publish` for [`Publisher`]: each checkpoint in its own file of `dir`
/// (`checkpoint-<row>-<time in ns>.txt`, written then synced), never overwriting one.
pub fn to_directory(
    dir: impl Into<std::path::PathBuf>,
) -> impl FnMut(&Checkpoint, &str) -> Result<(), String> + Send + 'static {
    let dir = dir.into();
    move |cp, text| {
        use std::io::Write;
        std::fs::create_dir_all(&dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
        let path = dir.join(format!("checkpoint-{}-{}.txt", cp.seq, cp.time.as_nanos()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("`{}`: {e}", path.display()))
    }
}

fn key_bytes(text: &str, header: &str, what: &str) -> Result<[u8; 32], CheckpointError> {
    text.trim_end()
        .strip_prefix(header)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(unhex)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            CheckpointError::Malformed(format!("not a {what} file (`{header} <64 hex digits>`)"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            store: "0193a1c2-0000-7000-8000-000000000001".into(),
            chain: "sha256".into(),
            seq: 42,
            link: Link::GENESIS,
            rows: 40,
            purged: 2,
            time: Timestamp::from_nanos(1_780_000_000_000_000_000),
        }
    }

    #[test]
    fn signed_text_round_trips_and_refuses_any_change() {
        let key = CheckpointKey::generate().unwrap();
        let text = sample().sign(&key);
        assert_eq!(Checkpoint::open(&text, &key.public()).unwrap(), sample());
        // Any changed byte of the body breaks the signature.
        let forged = text.replace("rows 40", "rows 41");
        assert_eq!(
            Checkpoint::open(&forged, &key.public()),
            Err(CheckpointError::BadSignature)
        );
        // Another key is named, not silently accepted.
        let other = CheckpointKey::generate().unwrap();
        assert!(matches!(
            Checkpoint::open(&text, &other.public()),
            Err(CheckpointError::OtherKey { .. })
        ));
        assert!(matches!(
            Checkpoint::open("audit-checkpoint/v1\n", &key.public()),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_panicking_publish_costs_one_round_not_the_publisher() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        drop(crate::store::Sqlite::open(&db).unwrap());
        let published = Arc::new(Mutex::new(Vec::new()));
        let (seen, mut calls) = (published.clone(), 0);
        let publisher = Publisher::spawn(
            move || crate::store::Sqlite::open(&db),
            CheckpointKey::generate().unwrap(),
            Duration::from_secs(3600),
            move |cp: &Checkpoint, _: &str| {
                calls += 1;
                if calls == 1 {
                    panic!("the witness service is down");
                }
                seen.lock().unwrap().push(cp.seq);
                Ok(())
            },
        );
        publisher.stop();
        assert_eq!(
            *published.lock().unwrap(),
            [0],
            "the round at stop still published"
        );
    }

    #[test]
    fn keys_round_trip_through_their_files() {
        let key = CheckpointKey::generate().unwrap();
        let again = CheckpointKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.public(), key.public());
        let public = PublicKey::from_text(&key.public().to_text()).unwrap();
        assert_eq!(public.id(), key.public().id());
        assert!(
            PublicKey::from_text(&key.to_text()).is_err(),
            "a secret key is not a public key"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        key.write(&path).unwrap();
        assert!(key.write(&path).is_err(), "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(CheckpointKey::read(&path).unwrap().public(), key.public());
        assert!(!format!("{key:?}").contains(&key.to_text()[40..]));
    }
}
