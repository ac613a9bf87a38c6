//! `audit store …`: administering a store (as opposed to reading it).

use std::process::ExitCode;

use audit_runtime::store::{Postgres, PostgresRoles};
use clap::{Args, Subcommand};

/// `audit store`.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Create (if missing) and grant the least-privileged roles of a PostgreSQL store:
    /// an owner no application uses, a writer (append + read), a reader (read) and an
    /// admin (read + purge). Connect as a superuser; run again after an upgrade (it
    /// migrates the schema as the owner).
    Roles(RolesCmd),
}

/// `audit store roles`.
#[derive(Args, Debug)]
pub struct RolesCmd {
    /// The PostgreSQL server, as a superuser (`postgres://postgres@host/db`).
    #[arg(long, env = "AUDIT_DB", hide_env_values = true)]
    db: String,
    /// The schema holding the store's tables (default: the connection's, `public`).
    #[arg(long)]
    schema: Option<String>,
    /// Owns the tables and functions; never used by an application.
    #[arg(long)]
    owner: String,
    /// The application's sinks and `audit ingest`.
    #[arg(long)]
    writer: String,
    /// Viewers and `audit query`.
    #[arg(long)]
    reader: String,
    /// Operators who purge.
    #[arg(long)]
    admin: String,
}

pub fn run(cmd: StoreCommand) -> ExitCode {
    match cmd {
        StoreCommand::Roles(cmd) => roles(cmd),
    }
}

fn roles(cmd: RolesCmd) -> ExitCode {
    if !cmd.db.starts_with("postgres://")
        && !cmd.db.starts_with("postgresql://")
        && !cmd.db.contains('=')
    {
        eprintln!(
            "error: roles are a PostgreSQL feature; a SQLite file has no roles (its triggers stop \
             accidents, keyed links and checkpoints detect an attacker: see SECURITY.md)"
        );
        return ExitCode::from(2);
    }
    let roles = PostgresRoles {
        owner: cmd.owner,
        writer: cmd.writer,
        reader: cmd.reader,
        admin: cmd.admin,
    };
    let mut options = Postgres::options();
    if let Some(schema) = cmd.schema {
        options = options.schema(schema);
    }
    match options.setup_roles(&cmd.db, &roles) {
        Ok(report) => {
            for r in &report.created {
                println!("created role {r}");
            }
            println!(
                "schema at version {}; owner {}, writer {}, reader {}, admin {}",
                report.version, roles.owner, roles.writer, roles.reader, roles.admin
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
