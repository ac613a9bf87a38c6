//! Least privilege: the roles a PostgreSQL store is owned, written, read and purged
//! by, and the grants that confine each one.
//!
//! | role | may |
//! |---|---|
//! | owner | own the tables and functions (used only to migrate: `audit store roles` again) |
//! | writer | append records (making the next partition through `audit_extend`, sealing the one before through `audit_seal`), read them, record the chain's key fingerprint once |
//! | reader | read |
//! | admin | read, purge through `audit_purge_through` (which writes its anchor) and erase a tenant through `audit_erase_tenant` |
//!
//! No role but the owner may update, delete, truncate, alter or drop anything, and
//! the owner's own rows are guarded by the same triggers. A superuser can still do
//! anything; keyed links and signed checkpoints are what detect that (SECURITY.md).

use postgres::Client;

use super::{PostgresOptions, db_error, quote_ident, schema};
use crate::store::StoreError;

/// The four roles of a least-privileged store (see the module's table).
///
/// ```no_run
/// # fn main() -> Result<(), audit_runtime::store::StoreError> {
/// use audit_runtime::store::{Postgres, PostgresRoles};
/// let roles = PostgresRoles {
///     owner: "audit_owner".into(),
///     writer: "audit_writer".into(),
///     reader: "audit_reader".into(),
///     admin: "audit_admin".into(),
/// };
/// // As a superuser, once, and again after an upgrade (it migrates as the owner):
/// let report = Postgres::options().setup_roles("postgres://postgres@127.0.0.1/test", &roles)?;
/// println!("created roles: {:?}", report.created);
/// // The application then connects as the writer:
/// let sink = Postgres::connect("postgres://audit_writer@127.0.0.1/test")?;
/// # let _ = sink; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresRoles {
    /// Owns the schema's audit tables and functions; no application uses it.
    pub owner: String,
    /// The application's sinks and `audit ingest`: append and read.
    pub writer: String,
    /// Viewers and `audit query`: read only.
    pub reader: String,
    /// Operators: read, and purge.
    pub admin: String,
}

/// What [`PostgresOptions::setup_roles`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolesReport {
    /// Roles that did not exist and were created (`LOGIN`, no password: set one
    /// with `ALTER ROLE … PASSWORD`, or use your server's authentication).
    pub created: Vec<String>,
    /// The schema version after migrating as the owner.
    pub version: u32,
}

/// The store's tables, in the order their privileges are set.
const TABLES: &[&str] = &[
    "audit_records",
    "audit_anchor",
    "audit_meta",
    "audit_migrations",
    "audit_purge_mark",
    "audit_partitions",
    "audit_partition_indexes",
];

/// The store's functions, as `ALTER FUNCTION` names them.
const FUNCTIONS: &[&str] = &[
    "audit_refuse_change()",
    "audit_purge_through(bigint, bigint)",
    "audit_erase_tenant(text, bigint, bigint)",
    "audit_extend(bigint, bigint)",
    "audit_index_partition(text, text, boolean)",
    "audit_partition_made()",
    "audit_seal()",
];

impl PostgresRoles {
    /// Refuses a set in which the owner is also a working role.
    fn check(&self) -> Result<(), StoreError> {
        for (what, name) in [
            ("writer", &self.writer),
            ("reader", &self.reader),
            ("admin", &self.admin),
        ] {
            if name.is_empty() {
                return Err(StoreError::Database(format!("the {what} role has no name")));
            }
            if *name == self.owner {
                return Err(StoreError::Database(format!(
                    "the {what} role `{name}` is the owner: the owner can alter and drop \
                     the tables, so no role that works with the store may be it"
                )));
            }
        }
        Ok(())
    }
}

impl PostgresOptions {
    /// Creates the four roles if missing, gives the store's tables and functions to
    /// the owner (migrating the schema as the owner), and grants each role exactly
    /// what its job needs. Idempotent; connect with `params` as a superuser (or a
    /// role that may create roles and owns the store's tables).
    ///
    /// Refused when the owner doubles as a working role, or when a working role is
    /// a superuser or a member of the owner role (either could do anything the owner
    /// can). See [`PostgresRoles`].
    pub fn setup_roles(
        self,
        params: &str,
        roles: &PostgresRoles,
    ) -> Result<RolesReport, StoreError> {
        roles.check()?;
        let (config, tls) = self.config(params)?;
        let mut client = super::connect(&config, &tls)?;
        let mut report = RolesReport::default();
        for (name, login) in [
            (&roles.owner, false),
            (&roles.writer, true),
            (&roles.reader, true),
            (&roles.admin, true),
        ] {
            if create_role(&mut client, name, login)? {
                report.created.push(name.clone());
            }
        }
        for name in [&roles.writer, &roles.reader, &roles.admin] {
            refuse_powerful(&mut client, name, &roles.owner)?;
        }
        let schema_name = self.schema.clone().unwrap_or_else(|| "public".into());
        let (s, owner) = (quote_ident(&schema_name), quote_ident(&roles.owner));
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&schema_name],
            )
            .map_err(db_error)?
            .get(0);
        let create_schema = if exists {
            format!("GRANT USAGE, CREATE ON SCHEMA {s} TO {owner};")
        } else {
            format!("CREATE SCHEMA {s} AUTHORIZATION {owner};")
        };
        client
            .batch_execute(&format!("{create_schema} SET search_path TO {s}"))
            .map_err(db_error)?;
        // Tables and functions an earlier version created as the application's role
        // change hands (an identity column's sequence follows its table).
        for table in TABLES {
            if regclass(&mut client, table)? {
                client
                    .batch_execute(&format!("ALTER TABLE {table} OWNER TO {owner}"))
                    .map_err(db_error)?;
            }
        }
        // A partitioned table's partitions keep their owner when it changes hands.
        if regclass(&mut client, "audit_partitions")? {
            for row in client
                .query("SELECT name FROM audit_partitions", &[])
                .map_err(db_error)?
            {
                let name = quote_ident(row.get::<_, &str>(0));
                client
                    .batch_execute(&format!("ALTER TABLE {name} OWNER TO {owner}"))
                    .map_err(db_error)?;
            }
        }
        for function in FUNCTIONS {
            let exists: bool = client
                .query_one("SELECT to_regprocedure($1) IS NOT NULL", &[function])
                .map_err(db_error)?
                .get(0);
            if exists {
                client
                    .batch_execute(&format!("ALTER FUNCTION {function} OWNER TO {owner}"))
                    .map_err(db_error)?;
            }
        }
        client
            .batch_execute(&format!("SET ROLE {owner}"))
            .map_err(db_error)?;
        report.version = schema::migrate(&mut client, schema::VERSION)?;
        client.batch_execute("RESET ROLE").map_err(db_error)?;
        grant(&mut client, &s, roles)?;
        Ok(report)
    }
}

/// Creates `name` unless it exists; whether it did.
fn create_role(client: &mut Client, name: &str, login: bool) -> Result<bool, StoreError> {
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&name],
        )
        .map_err(db_error)?
        .get(0);
    if !exists {
        let login = if login { "LOGIN" } else { "NOLOGIN" };
        client
            .batch_execute(&format!("CREATE ROLE {} {login}", quote_ident(name)))
            .map_err(db_error)?;
    }
    Ok(!exists)
}

/// Refuses a working role that is a superuser, may bypass row security, or is a
/// member of the owner role.
fn refuse_powerful(client: &mut Client, name: &str, owner: &str) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT rolsuper, pg_has_role($1, $2, 'MEMBER') FROM pg_roles WHERE rolname = $1",
            &[&name, &owner],
        )
        .map_err(db_error)?;
    let (superuser, member): (bool, bool) = (row.get(0), row.get(1));
    if superuser || member {
        return Err(StoreError::Database(format!(
            "the role `{name}` is {}: it could do anything the owner can; give the store a \
             role without that power",
            if superuser {
                "a superuser".to_string()
            } else {
                format!("a member of the owner role `{owner}`")
            }
        )));
    }
    Ok(())
}

fn regclass(client: &mut Client, table: &str) -> Result<bool, StoreError> {
    Ok(client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .map_err(db_error)?
        .get(0))
}

/// Revokes everything, then grants each role its job.
fn grant(client: &mut Client, schema: &str, roles: &PostgresRoles) -> Result<(), StoreError> {
    let [w, r, a] = [&roles.writer, &roles.reader, &roles.admin].map(|n| quote_ident(n));
    let tables = TABLES.join(", ");
    // Positions are assigned by the writer since schema 6: no sequence to grant.
    // Partitions are reached through `audit_records` only, whose grants cover them.
    client
        .batch_execute(&format!(
            "BEGIN;
             REVOKE ALL ON {tables} FROM PUBLIC, {w}, {r}, {a};
             REVOKE ALL ON FUNCTION audit_purge_through(bigint, bigint) FROM PUBLIC, {w}, {r};
             REVOKE ALL ON FUNCTION audit_erase_tenant(text, bigint, bigint) FROM PUBLIC, {w}, {r};
             REVOKE ALL ON FUNCTION audit_extend(bigint, bigint) FROM PUBLIC, {r}, {a};
             REVOKE ALL ON FUNCTION audit_seal() FROM PUBLIC, {r}, {a};
             REVOKE CREATE ON SCHEMA {schema} FROM {w}, {r}, {a};
             GRANT USAGE ON SCHEMA {schema} TO {w}, {r}, {a};
             GRANT SELECT, INSERT ON audit_records, audit_meta TO {w};
             GRANT SELECT ON audit_anchor, audit_migrations, audit_partitions TO {w};
             GRANT EXECUTE ON FUNCTION audit_extend(bigint, bigint) TO {w};
             GRANT EXECUTE ON FUNCTION audit_seal() TO {w};
             GRANT SELECT ON audit_records, audit_anchor, audit_meta, audit_migrations,
                 audit_partitions TO {r}, {a};
             GRANT EXECUTE ON FUNCTION audit_purge_through(bigint, bigint) TO {a};
             GRANT EXECUTE ON FUNCTION audit_erase_tenant(text, bigint, bigint) TO {a};
             COMMIT;"
        ))
        .map_err(db_error)
}
