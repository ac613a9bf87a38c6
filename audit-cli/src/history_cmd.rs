//! `audit history TYPE:ID`: every record of one entity, oldest first, and its state
//! at a time (`--as-of`).

use std::io::Write;
use std::process::ExitCode;

use audit_runtime::store::{History, Query, State};
use clap::Args;

use crate::render;
use crate::store_cmd::{StoreArgs, finish, parse_time};

/// `audit history`.
#[derive(Args, Debug)]
pub struct HistoryCmd {
    /// The entity: `type:id` (`user:42`).
    entity: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Only this tenant's records (the entity as that tenant knows it).
    #[arg(long)]
    tenant: Option<String>,
    /// Also print the entity's state at this time (RFC 3339, or an age: `2d`).
    #[arg(long)]
    as_of: Option<String>,
    /// Records as JSON Lines, the state as JSON.
    #[arg(long)]
    json: bool,
}

pub fn history(cmd: HistoryCmd) -> ExitCode {
    finish((|| {
        let (kind, id) = cmd
            .entity
            .split_once(':')
            .ok_or_else(|| format!("`{}`: write the entity as type:id", cmd.entity))?;
        let as_of = cmd.as_of.as_deref().map(parse_time).transpose()?;
        let mut store = cmd.store.open()?;
        let scope = match &cmd.tenant {
            Some(t) => Query::for_tenant(t),
            None => Query::all(),
        };
        let history = History::read(&mut *store, scope, kind, id).map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        let printed = if cmd.json {
            render::json_lines(&mut out, history.records())
        } else {
            render::table(&mut out, history.records())
        };
        printed.map_err(|e| e.to_string())?;
        if let Some(t) = as_of {
            let state = history.as_of(t);
            let text = if cmd.json {
                serde_json::to_string(&state_json(&state)).map_err(|e| e.to_string())?
            } else {
                state_text(kind, id, t, &state)
            };
            writeln!(out, "{text}").map_err(|e| e.to_string())?;
        }
        Ok(ExitCode::SUCCESS)
    })())
}

fn state_json(state: &State) -> serde_json::Value {
    match state {
        State::Unknown => serde_json::json!({"state": "unknown"}),
        State::Existing {
            fields,
            redacted,
            record,
            at,
        } => serde_json::json!({
            "state": "existing", "fields": fields, "redacted": redacted,
            "record": record, "at": at,
        }),
        State::Deleted { record, at } => {
            serde_json::json!({"state": "deleted", "record": record, "at": at})
        }
    }
}

fn state_text(kind: &str, id: &str, t: audit_runtime::Timestamp, state: &State) -> String {
    match state {
        State::Unknown => {
            format!("\n{kind}:{id} as of {t}: unknown (no successful change recorded by then)")
        }
        State::Existing {
            fields,
            redacted,
            record,
            at,
        } => {
            let mut s = format!(
                "\n{kind}:{id} as of {t} (left so by {record} at {at}):\n{}",
                serde_json::to_string_pretty(fields).unwrap_or_default()
            );
            if !redacted.is_empty() {
                s.push_str(&format!(
                    "\npartial: {} redacted, not in the trail",
                    redacted.join(", ")
                ));
            }
            s
        }
        State::Deleted { record, at } => {
            format!("\n{kind}:{id} as of {t}: deleted (by {record} at {at})")
        }
    }
}
