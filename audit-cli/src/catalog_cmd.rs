//! `audit catalog check | lock | docs`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_catalog::{Catalog, CatalogError, Lock, lock_path};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Validate a catalog and its lock file (audit.lock for audit.toml); print every error as file:line:col.
    Check {
        /// The catalog file (default: found from the current crate).
        file: Option<PathBuf>,
    },
    /// Write or update the lock file next to the catalog with every code assigned.
    Lock {
        /// The catalog file (default: found from the current crate).
        file: Option<PathBuf>,
    },
    /// Render the catalog as Markdown.
    Docs {
        /// The catalog file (default: found from the current crate).
        file: Option<PathBuf>,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub fn run(cmd: CatalogCommand) -> ExitCode {
    let result = match cmd {
        CatalogCommand::Check { file } => resolve(file).and_then(|p| check(&p)),
        CatalogCommand::Lock { file } => resolve(file).and_then(|p| lock(&p)),
        CatalogCommand::Docs { file, output } => {
            resolve(file).and_then(|p| docs(&p, output.as_deref()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The explicit file, or the current crate's catalog.
fn resolve(file: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(f) = file {
        return Ok(f);
    }
    let cwd = std::env::current_dir().map_err(|e| format!("error: {e}\n"))?;
    let env = std::env::var_os(audit_catalog::CATALOG_ENV);
    audit_catalog::locate(&cwd, env.as_deref()).map_err(|e| format!("error: {e}\n"))
}

/// Every error, one `file:line:col: message` line each, then the rustc-like
/// snippet with a caret (coloured on a terminal).
fn report(err: &CatalogError) -> String {
    let CatalogError::Invalid(diags) = err else {
        return format!("error: {err}\n");
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = String::new();
    for d in diags {
        out.push_str(&format!("{d}\n"));
    }
    out.push('\n');
    for d in diags {
        let snippet = d.render();
        if color {
            out.push_str(&snippet.replacen("error:", "\x1b[1;31merror\x1b[0m:", 1));
        } else {
            out.push_str(&snippet);
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{} error{} in {}\n",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" },
        diags
            .first()
            .map(|d| d.source().path().display().to_string())
            .unwrap_or_default()
    ));
    out
}

fn check(path: &Path) -> Result<(), String> {
    let cat = Catalog::load(path).map_err(|e| report(&e))?;
    let live = cat.live_events().count();
    let locked = if lock_path(path).exists() {
        "checked against its lock file"
    } else {
        "no lock file yet: run `audit catalog lock`"
    };
    println!(
        "{}: catalog `{}` is valid: {live} events ({} retired), {} entities, {} fields; {locked}",
        path.display(),
        cat.name,
        cat.events.len() - live,
        cat.entities.len(),
        cat.events.iter().map(|e| e.fields.len()).sum::<usize>(),
    );
    Ok(())
}

fn lock(path: &Path) -> Result<(), String> {
    let cat = Catalog::parse(path, &read(path)?).map_err(|e| report(&e))?;
    let lock_file = lock_path(path);
    let previous = Lock::read(&lock_file)
        .map_err(|e| report(&e))?
        .unwrap_or_default();
    let conflicts = previous.check(&cat);
    if !conflicts.is_empty() {
        return Err(report(&CatalogError::Invalid(conflicts)));
    }
    let next = previous.updated(&cat);
    let added =
        next.events.len() - previous.events.len() + next.entities.len() - previous.entities.len();
    std::fs::write(&lock_file, next.to_toml())
        .map_err(|e| format!("error: cannot write {}: {e}\n", lock_file.display()))?;
    println!(
        "{}: {} events and {} entities locked ({added} new)",
        lock_file.display(),
        next.events.len(),
        next.entities.len()
    );
    Ok(())
}

fn docs(path: &Path, output: Option<&Path>) -> Result<(), String> {
    let cat = Catalog::load(path).map_err(|e| report(&e))?;
    let md = audit_catalog::render_markdown(&cat);
    match output {
        Some(out) => std::fs::write(out, md)
            .map_err(|e| format!("error: cannot write {}: {e}\n", out.display())),
        None => {
            print!("{md}");
            Ok(())
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read {}: {e}\n", path.display()))
}
