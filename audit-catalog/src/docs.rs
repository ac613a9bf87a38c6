//! Markdown reference of a catalog, in the shape of the seeds' event tables.

use std::fmt::Write as _;

use crate::model::{Catalog, Event};

/// Renders the catalog as Markdown: a summary table per category, then each event's
/// description, level, entity and metadata table with an example JSON object, and
/// one table per alias set listing the renamed events.
///
/// ```
/// let cat = audit_catalog::Catalog::parse("audit.toml", "[catalog]\nname = 'x'\n[events.app_add]\ncode = 1\nfields = { name = 'string' }\n").unwrap();
/// let md = audit_catalog::render_markdown(&cat);
/// assert!(md.contains("| `name` | string | yes |"));
/// ```
pub fn render_markdown(cat: &Catalog) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Audit events: {}\n", cat.name);
    if let Some(d) = &cat.description {
        let _ = writeln!(out, "{d}\n");
    }
    let _ = writeln!(
        out,
        "Generated from `{}` by `audit catalog docs`. Codes are stable: they never change and are never reused.\n",
        cat.path()
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    );
    if !cat.defaults.redact.is_empty() {
        let _ = writeln!(
            out,
            "Values of these keys are redacted in every event: {}.\n",
            code_list(&cat.defaults.redact)
        );
    }

    let mut categories: Vec<&str> = Vec::new();
    for e in cat.live_events() {
        if !categories.contains(&e.category.as_str()) {
            categories.push(&e.category);
        }
    }
    for category in categories {
        let events: Vec<&Event> = cat
            .live_events()
            .filter(|e| e.category == category)
            .collect();
        let _ = writeln!(out, "## {}\n", heading(category));
        let _ = writeln!(out, "| Event | Code | Level | Entity | Description |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for e in &events {
            let _ = writeln!(
                out,
                "| [`{}`](#{}) | {} | {} | {} | {} |",
                e.name,
                e.name,
                e.code,
                e.level.as_str(),
                e.entity.as_deref().unwrap_or("-"),
                cell(&summary(e)),
            );
        }
        out.push('\n');
        for e in events {
            event_section(&mut out, e);
        }
    }

    let retired: Vec<&Event> = cat.events.iter().filter(|e| e.retired).collect();
    if !retired.is_empty() {
        let _ = writeln!(
            out,
            "## Retired events\n\nTheir codes stay reserved; no code emits them.\n"
        );
        let _ = writeln!(out, "| Event | Code |\n|---|---|");
        for e in retired {
            let _ = writeln!(out, "| `{}` | {} |", e.name, e.code);
        }
        out.push('\n');
    }

    let mut sinks: Vec<&str> = Vec::new();
    for e in cat.live_events() {
        for a in &e.aliases {
            if !sinks.contains(&a.sink.as_str()) {
                sinks.push(&a.sink);
            }
        }
    }
    for sink in sinks {
        let _ = writeln!(out, "## Names sent to `{sink}`\n");
        let _ = writeln!(out, "| Event | Name at `{sink}` |\n|---|---|");
        for e in cat.live_events() {
            if let Some(a) = e.aliases.iter().find(|a| a.sink == sink) {
                let _ = writeln!(out, "| `{}` | `{}` |", e.name, a.template.as_str());
            }
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn event_section(out: &mut String, e: &Event) {
    let _ = writeln!(out, "### `{}`\n", e.name);
    if let Some(t) = &e.title {
        let _ = writeln!(out, "{t}\n");
    }
    if let Some(d) = &e.description {
        let _ = writeln!(out, "Description: `{}`\n", d.as_str());
    }
    if let Some(f) = &e.failure {
        let _ = writeln!(out, "On failure: `{}`\n", f.as_str());
    }
    let mut facts = vec![
        format!("code {}", e.code),
        format!("level {}", e.level.as_str()),
    ];
    if let Some(entity) = &e.entity {
        facts.push(format!("entity `{entity}`"));
    }
    if e.changes {
        facts.push("records previous / current / difference".into());
    }
    if e.reverts {
        facts.push("reverts an earlier record (its records name it in `reverts`)".into());
    }
    if e.summary {
        facts.push("a bulk call also writes a summary record".into());
    }
    if e.durability == crate::Durability::Sync {
        facts.push("sync: returns after the primary store committed".into());
    }
    let _ = writeln!(out, "{}.\n", capitalize(&facts.join(", ")));
    if e.fields.is_empty() {
        let _ = writeln!(out, "No metadata.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| Field | Type | Required | Notes |\n|---|---|---|---|"
    );
    let mut example = serde_json::Map::new();
    for f in &e.fields {
        let mut notes = f.doc.clone().unwrap_or_default();
        if f.redact {
            if !notes.is_empty() {
                notes.push_str("; ");
            }
            notes.push_str("redacted");
        }
        if f.indexed {
            if !notes.is_empty() {
                notes.push_str("; ");
            }
            notes.push_str("indexed (a query filter)");
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            f.name,
            cell(&f.ty.to_string()),
            if f.ty.is_required() { "yes" } else { "no" },
            cell(&notes)
        );
        let value = if f.redact {
            serde_json::Value::String(crate::REDACTED.into())
        } else {
            f.example.clone().unwrap_or_else(|| f.ty.example())
        };
        example.insert(f.name.clone(), value);
    }
    let json =
        serde_json::to_string_pretty(&serde_json::Value::Object(example)).unwrap_or_default();
    let _ = writeln!(out, "\n```json\n{json}\n```\n");
}

fn summary(e: &Event) -> String {
    e.title
        .clone()
        .or_else(|| e.description.as_ref().map(|d| d.as_str().to_owned()))
        .unwrap_or_default()
}

fn heading(category: &str) -> String {
    let mut h = capitalize(&category.replace('_', " "));
    h.push_str(" events");
    h
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn code_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
