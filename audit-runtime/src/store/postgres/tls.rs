//! TLS to PostgreSQL, with rustls, in libpq's terms: `sslmode` `disable`, `prefer`
//! (the default: encrypt when the server can), `require` (always encrypt; the
//! certificate is not checked) and `verify-full` (encrypt, and check the certificate
//! against `sslrootcert` and the host name). Read from the connection parameters,
//! else from `PGSSLMODE` / `PGSSLROOTCERT`, as libpq does.

use std::path::PathBuf;
use std::sync::Arc;

use postgres::config::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// How a [`super::Postgres`] store protects its connection.
///
/// ```
/// use audit_runtime::store::{PgTls, Postgres};
/// let options = Postgres::options().tls(PgTls::VerifyFull {
///     root_cert: "/etc/ssl/certs/db-ca.pem".into(),
/// });
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PgTls {
    /// Never encrypt.
    Disable,
    /// Encrypt when the server offers it, without checking its certificate.
    #[default]
    Prefer,
    /// Always encrypt; the certificate is not checked (protects against eavesdropping,
    /// not against an active impostor).
    Require,
    /// Always encrypt, and check the server's certificate chain against `root_cert`
    /// (PEM) and its name against the host connected to.
    VerifyFull {
        /// The certificate authority (or the server's self-signed certificate).
        root_cert: PathBuf,
    },
}

impl PgTls {
    /// The mode of connection parameters (`sslmode`, `sslrootcert`, in a URL's query
    /// or as `key=value` pairs), else of `PGSSLMODE` / `PGSSLROOTCERT`; and the
    /// parameters without them, for the driver (which knows neither `verify-full`
    /// nor `sslrootcert`).
    pub(super) fn from_params(params: &str) -> Result<(PgTls, String), StoreError> {
        let (rest, mode) = take_param(params, "sslmode");
        let (rest, root) = take_param(&rest, "sslrootcert");
        let mode = mode.or_else(|| std::env::var("PGSSLMODE").ok());
        let root = root.or_else(|| std::env::var("PGSSLROOTCERT").ok());
        let tls = match mode.as_deref() {
            None | Some("prefer") | Some("allow") => PgTls::Prefer,
            Some("disable") => PgTls::Disable,
            Some("require") => match root {
                // libpq: `require` with a root certificate verifies like `verify-ca`.
                Some(root) => PgTls::VerifyFull {
                    root_cert: root.into(),
                },
                None => PgTls::Require,
            },
            Some("verify-full") => PgTls::VerifyFull {
                root_cert: root
                    .ok_or_else(|| {
                        StoreError::Database(
                            "sslmode=verify-full needs sslrootcert=FILE (or PGSSLROOTCERT)".into(),
                        )
                    })?
                    .into(),
            },
            Some(other) => {
                return Err(StoreError::Database(format!(
                    "sslmode `{other}` is not supported: use disable, prefer, require or verify-full"
                )));
            }
        };
        Ok((tls, rest))
    }

    /// The driver's mode for this setting.
    pub(super) fn ssl_mode(&self) -> SslMode {
        match self {
            PgTls::Disable => SslMode::Disable,
            PgTls::Prefer => SslMode::Prefer,
            PgTls::Require | PgTls::VerifyFull { .. } => SslMode::Require,
        }
    }

    /// The connector for this setting.
    pub(super) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Database(format!("tls: {e}")))?;
        let config = match self {
            PgTls::VerifyFull { root_cert } => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(root_cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        StoreError::Database(format!(
                            "tls: cannot read the root certificate {}: {e}",
                            root_cert.display()
                        ))
                    })?;
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        StoreError::Database(format!("tls: {}: {e}", root_cert.display()))
                    })?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            _ => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

/// `key` removed from connection parameters (a URL's query, or `key=value` pairs),
/// with its value.
fn take_param(params: &str, key: &str) -> (String, Option<String>) {
    if params.starts_with("postgres://") || params.starts_with("postgresql://") {
        let Some((base, query)) = params.split_once('?') else {
            return (params.to_string(), None);
        };
        let mut value = None;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| match pair.split_once('=') {
                Some((k, v)) if k == key => {
                    value = Some(v.to_string());
                    false
                }
                _ => true,
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, value);
    }
    let mut value = None;
    let kept: Vec<&str> = params
        .split_whitespace()
        .filter(|pair| match pair.split_once('=') {
            Some((k, v)) if k == key => {
                value = Some(v.trim_matches('\'').to_string());
                false
            }
            _ => true,
        })
        .collect();
    (kept.join(" "), value)
}

/// `require` and `prefer`: the handshake's signatures are checked (the session is
/// encrypted to whoever holds the key), the certificate's chain and name are not.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_come_from_the_parameters() {
        let (tls, rest) = PgTls::from_params(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            tls,
            PgTls::VerifyFull {
                root_cert: "/ca.pem".into()
            }
        );
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        let (tls, rest) = PgTls::from_params("host=h sslmode=require user=u").unwrap();
        assert_eq!((tls, rest.as_str()), (PgTls::Require, "host=h user=u"));
        assert!(PgTls::from_params("host=h sslmode=verify-full").is_err());
        assert!(PgTls::from_params("host=h sslmode=verify-ca").is_err());
    }
}
