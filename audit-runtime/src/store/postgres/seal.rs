//! Sealing partitions beside the writes (schema 8). Once a batch that made a new
//! partition has committed, `audit_seal()` builds the query indexes of the
//! partitions before it, on a connection and a thread of the store's own, while the
//! next batches (which write only newer partitions) go on. Before schema 8 the seal
//! ran inside the writer's transaction, under the writers' lock: a stall of a few
//! index builds every partition.
//!
//! A seal that fails (a lost connection, a cancelled statement) leaves the
//! partition readable through its tail index; the next seal, by this writer or
//! another, seals every partition but the newest that is not sealed yet.

use std::sync::Arc;
use std::thread::JoinHandle;

use postgres::Client;

use super::{StoreError, db_error};

/// How long a kept connection may take to answer before a seal opens another.
const CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sealer's connection (a store session).
pub(super) type Open = Arc<dyn Fn() -> Result<Client, StoreError> + Send + Sync>;

/// What a seal hands back: its connection, kept for the next unless it failed, and
/// its outcome.
type Sealed = (Option<Client>, Result<(), StoreError>);

/// The store's seals: at most one at a time, the connection kept between them.
pub(super) struct Sealer {
    /// Opens a connection when none is kept.
    open: Open,
    /// The seal under way.
    running: Option<JoinHandle<Sealed>>,
    /// The connection between seals.
    client: Option<Client>,
    /// A seal was asked for while one ran: another follows it.
    again: bool,
    /// The first failure since [`Sealer::wait`] last reported one.
    failed: Option<StoreError>,
}

impl Sealer {
    pub(super) fn new(open: Open) -> Self {
        Sealer {
            open,
            running: None,
            client: None,
            again: false,
            failed: None,
        }
    }

    /// Asks for a seal: starts one, or, one being under way, another after it.
    pub(super) fn request(&mut self) {
        if self.running.as_ref().is_some_and(|h| h.is_finished()) {
            self.join();
        }
        match self.running {
            Some(_) => self.again = true,
            None => self.start(),
        }
    }

    /// Collects a seal that has ended and starts the one asked for meanwhile.
    pub(super) fn collect(&mut self) {
        if self.running.as_ref().is_some_and(|h| h.is_finished()) {
            self.join();
            if std::mem::take(&mut self.again) {
                self.start();
            }
        }
    }

    /// Waits for the seals asked for; the first failure since the last call.
    pub(super) fn wait(&mut self) -> Result<(), StoreError> {
        while self.running.is_some() {
            self.join();
            if std::mem::take(&mut self.again) {
                self.start();
            }
        }
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Runs `audit_seal()` on a thread of its own.
    fn start(&mut self) {
        let kept = self.client.take().filter(|c| !c.is_closed());
        let open = Arc::clone(&self.open);
        let seal = move || -> Sealed {
            // A kept connection the server closed since (a restart, an idle
            // timeout) is replaced, not failed on.
            let live = |mut c: Client| c.is_valid(CHECK).is_ok().then_some(c);
            let client = match kept.and_then(live) {
                Some(client) => Ok(client),
                None => open(),
            };
            match client.map(|mut c| (c.batch_execute("SELECT audit_seal()"), c)) {
                Ok((Ok(()), client)) => (Some(client), Ok(())),
                // The connection goes: it may be the one that failed.
                Ok((Err(e), _)) => (None, Err(db_error(e))),
                Err(e) => (None, Err(e)),
            }
        };
        match std::thread::Builder::new()
            .name("audit-pg-seal".into())
            .spawn(seal)
        {
            Ok(handle) => self.running = Some(handle),
            Err(e) => self.fail(StoreError::Database(format!("no thread to seal on: {e}"))),
        }
    }

    /// Waits for the seal under way and keeps what it hands back.
    fn join(&mut self) {
        let Some(handle) = self.running.take() else {
            return;
        };
        match handle.join() {
            Ok((client, sealed)) => {
                self.client = client;
                if let Err(e) = sealed {
                    self.fail(e);
                }
            }
            Err(panic) => self.fail(StoreError::Database(format!(
                "the seal panicked: {}",
                crate::panic::message(&*panic)
            ))),
        }
    }

    fn fail(&mut self, e: StoreError) {
        self.failed.get_or_insert(e);
    }
}

impl Drop for Sealer {
    /// A store that goes away finishes its seal first: a process that ends
    /// normally leaves its partitions sealed.
    fn drop(&mut self) {
        self.join();
    }
}
