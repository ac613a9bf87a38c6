//! `audit serve`: the read-only HTTP API over a store (`audit-viewer`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use audit_viewer::{Access, Viewer};
use clap::Args;

use crate::store_cmd::{StoreArgs, finish};

/// `audit serve`.
#[derive(Args, Debug)]
pub struct ServeCmd {
    #[command(flatten)]
    store: StoreArgs,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Bearer tokens, one per line: `<token> admin` or `<token> tenant:<name>`.
    /// Without it every caller is an admin, so the server listens on loopback only.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// An event catalog (audit.toml) whose events, codes, fields and templates the
    /// viewer offers beside those the store holds records of. Repeatable.
    #[arg(long = "catalog", value_name = "FILE")]
    catalogs: Vec<PathBuf>,
}

pub fn serve(cmd: ServeCmd) -> ExitCode {
    finish((|| {
        let access = match &cmd.token_file {
            Some(f) => Access::read(f).map_err(|e| e.to_string())?,
            None if cmd.addr.ip().is_loopback() => Access::open(),
            None => {
                return Err(format!(
                    "without --token-file every caller would be an admin: listen on loopback \
                     (127.0.0.1) or give tokens, not {}",
                    cmd.addr
                ));
            }
        };
        let catalogs = cmd
            .catalogs
            .iter()
            .map(|p| audit_catalog::Catalog::load(p).map_err(|e| format!("{}: {e}", p.display())))
            .collect::<Result<Vec<_>, _>>()?;
        // Fail now on a store that does not open, not at the first request.
        drop(cmd.store.open_send()?);
        let store = cmd.store.clone();
        let viewer = Viewer::new(
            move || {
                store
                    .open_send()
                    .map_err(audit_runtime::store::StoreError::Database)
            },
            access.clone(),
        )
        .catalogs(catalogs);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(cmd.addr)
                .await
                .map_err(|e| format!("{}: {e}", cmd.addr))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            eprintln!(
                "audit serve: http://{addr}/ ({})",
                if access.needs_tokens() {
                    "bearer tokens required"
                } else {
                    "no tokens: loopback only, every caller is an admin"
                }
            );
            axum::serve(listener, viewer.router())
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| e.to_string())
        })?;
        Ok(ExitCode::SUCCESS)
    })())
}
