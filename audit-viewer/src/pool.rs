//! Stores for requests in flight: opened on demand, kept for the next request.
//! Store calls block, so they run on tokio's blocking threads.

use std::sync::Mutex;

use audit_runtime::store::{Store, StoreError};

use crate::error::ApiError;

/// Opens one store (a SQLite file, a PostgreSQL connection).
pub type StoreFactory = Box<dyn Fn() -> Result<Box<dyn Store + Send>, StoreError> + Send + Sync>;

pub(crate) struct Pool {
    open: StoreFactory,
    idle: Mutex<Vec<Box<dyn Store + Send>>>,
}

impl Pool {
    pub(crate) fn new(open: StoreFactory) -> Self {
        Pool {
            open,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` with a store, on a blocking thread. A store whose call failed is
    /// dropped (its connection may be broken), not kept.
    pub(crate) async fn with<R: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let pool = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let taken = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut store = match taken {
                Some(s) => s,
                None => (pool.open)().map_err(ApiError::store)?,
            };
            let result = f(&mut *store);
            if result.is_ok() {
                pool.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(store);
            }
            result
        })
        .await
        .map_err(|e| ApiError::internal(format!("the store call failed: {e}")))?
    }
}
