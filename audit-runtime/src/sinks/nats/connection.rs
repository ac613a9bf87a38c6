//! How every NATS client of the crate connects (the sink, `audit ingest`, the
//! checkpoint bucket): TLS with a custom root, required TLS, and credentials read
//! from files — never from a flag or a URL.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::ConnectOptions;

use crate::sinks::SinkError;

/// NATS connection security: TLS and credentials.
///
/// ```
/// use audit_runtime::sinks::NatsConnection;
/// let connection = NatsConnection::default()
///     .tls_root("/etc/nats/ca.pem")             // trust this authority (implies TLS)
///     .credentials_file("/run/secrets/app.creds"); // a JWT + nkey `.creds` file
/// # let _ = connection;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsConnection {
    root: Option<PathBuf>,
    require_tls: bool,
    credentials: Option<PathBuf>,
    nkey_seed: Option<PathBuf>,
}

impl NatsConnection {
    /// Trusts the certificate authority in this PEM file, and requires TLS.
    pub fn tls_root(mut self, pem: impl Into<PathBuf>) -> Self {
        self.root = Some(pem.into());
        self.require_tls = true;
        self
    }

    /// Refuses to connect without TLS (the system's roots verify the server unless
    /// [`NatsConnection::tls_root`] names one).
    pub fn require_tls(mut self) -> Self {
        self.require_tls = true;
        self
    }

    /// Authenticates with a `.creds` file (a user JWT and its nkey seed).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials = Some(path.into());
        self
    }

    /// Authenticates with the nkey seed in this file (`SU…`).
    pub fn nkey_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.nkey_seed = Some(path.into());
        self
    }

    /// The client's options (credentials read now).
    pub(crate) async fn options(&self) -> Result<ConnectOptions, SinkError> {
        let mut o = ConnectOptions::new().connection_timeout(Duration::from_secs(5));
        if let Some(path) = &self.credentials {
            o = o.credentials_file(path).await.map_err(|e| {
                SinkError::permanent(format!("nats: credentials {}: {e}", path.display()))
            })?;
        }
        if let Some(path) = &self.nkey_seed {
            let seed = std::fs::read_to_string(path).map_err(|e| {
                SinkError::permanent(format!("nats: nkey seed {}: {e}", path.display()))
            })?;
            o = o.nkey(seed.trim().to_string());
        }
        if let Some(root) = &self.root {
            o = o.add_root_certificates(root.clone());
        }
        Ok(o.require_tls(self.require_tls))
    }

    /// Connects to `url`.
    pub(crate) async fn connect(&self, url: &str) -> Result<async_nats::Client, SinkError> {
        self.options()
            .await?
            .connect(url)
            .await
            .map_err(|e| SinkError::retryable(format!("nats: cannot connect to {url}: {e}")))
    }
}
