//! The HTTP sink over HTTPS: a collector (rustls on loopback) whose certificate is
//! signed by an authority the test makes. With that authority as the sink's only root
//! the batch is delivered; with the default roots the collector is not trusted.

#[path = "../../store_suite/mod.rs"]
mod store_suite;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;

use audit::sinks::{Http, Item, Sink};
use audit_distributed_tests::make_certs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Serves HTTPS on a free port until the test ends: every request body it reads
/// goes to the channel, every answer is `200 OK`.
fn collector(cert: &std::path::Path, key: &std::path::Path) -> (u16, mpsc::Receiver<String>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            // A client that refuses the certificate ends here.
            let mut reader = BufReader::new(&mut tls);
            let mut length = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_ok() {
                        let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                    }
                    let _ = tls.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    let _ = tls.flush();
                    break;
                }
            }
        }
    });
    (port, rx)
}

#[test]
fn https_with_a_made_root() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let (port, bodies) = collector(&cert, &key);
    let url = format!("https://localhost:{port}/audit");
    let record = || {
        let mut r = store_suite::record(1, audit::Timestamp::now());
        r.description = "delivered over TLS".into();
        Item::new(r, "x")
    };

    let mut trusted = Http::options().tls_root(&ca).unwrap().build(&url);
    trusted
        .write(&[record()])
        .expect("delivered to the collector over HTTPS");
    let body = bodies
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(body.contains("delivered over TLS"), "{body}");

    let mut default_roots = Http::options().build(&url);
    let e = default_roots.write(&[record()]).unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.to_string().to_lowercase().contains("certificate") || e.to_string().contains("issuer"),
        "{e}"
    );

    let e = Http::options()
        .tls_root(dir.path().join("none.pem"))
        .unwrap_err();
    assert!(e.to_string().contains("none.pem"), "{e}");
    let e = Http::options().tls_root(&key).unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
}
