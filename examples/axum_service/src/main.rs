//! Serves the example on 127.0.0.1:3000 (or `$ADDR`), its trail in
//! `axum-service.db` (or `$AUDIT_DB`); query it with
//! `audit query --db axum-service.db`.

use std::net::SocketAddr;

use audit::Auditor;
use audit::store::Sqlite;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let db = std::env::var("AUDIT_DB").unwrap_or_else(|_| "axum-service.db".into());
    let _guard = Auditor::builder().sink(Sqlite::open(&db)?).install()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("serving on http://{addr}, audit trail in {db}");
    let app = axum_service_example::app(Default::default());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
