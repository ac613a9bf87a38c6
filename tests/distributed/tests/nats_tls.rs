//! NATS over TLS with a certificate the test makes, and nkey authentication, against a
//! real `nats-server` the test starts on a port of its own (JetStream on, TLS
//! required, one nkey user). The sink publishes only with the right root and seed.

#[path = "../../store_suite/mod.rs"]
mod store_suite;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use audit::sinks::{Item, Nats, NatsConnection, Sink};
use audit_distributed_tests::make_certs;

/// A `nats-server` child, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, port: u16, cert: &Path, key: &Path, user: &str) -> Server {
    let config = dir.join("server.conf");
    std::fs::write(
        &config,
        format!(
            "port: {port}\nhost: 127.0.0.1\njetstream {{ store_dir: \"{}\" }}\n\
             tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n\
             authorization {{ users = [ {{ nkey: {user} }} ] }}\n",
            dir.join("js").display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("nats-server runs (the machine's NATS package)");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn tls_with_a_made_root_and_an_nkey() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let user = nkeys::KeyPair::new_user();
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, user.seed().unwrap()).unwrap();
    let port = free_port();
    let _server = start(dir.path(), port, &cert, &key, &user.public_key());
    let url = format!("nats://localhost:{port}");

    let good = NatsConnection::default().tls_root(&ca).nkey_file(&seed);
    let mut sink = Nats::options()
        .stream("AUDIT_TLS")
        .subject_prefix("audit_tls")
        .connection(good)
        .connect(&url)
        .unwrap();
    let records = (0..5).map(|i| {
        store_suite::record(
            i,
            audit::Timestamp::from_nanos(1_780_000_000_000_000_000 + i as i64),
        )
    });
    let items: Vec<Item> = records.map(|r| Item::new(r, "x")).collect();
    sink.write(&items)
        .expect("published over TLS, authenticated by nkey");

    // Without the made root, the server's certificate is not trusted.
    let e = Nats::options()
        .stream("AUDIT_TLS")
        .subject_prefix("audit_tls")
        .connection(NatsConnection::default().require_tls().nkey_file(&seed))
        .connect(&url)
        .unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");

    // The right root without the nkey: refused by the server.
    let e = Nats::options()
        .stream("AUDIT_TLS")
        .subject_prefix("audit_tls")
        .connection(NatsConnection::default().tls_root(&ca))
        .connect(&url)
        .unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");

    // A seed file that is missing is named.
    let e = Nats::options()
        .connection(
            NatsConnection::default()
                .tls_root(&ca)
                .nkey_file(dir.path().join("none.nk")),
        )
        .connect(&url)
        .unwrap_err();
    assert!(e.to_string().contains("none.nk"), "{e}");
}
