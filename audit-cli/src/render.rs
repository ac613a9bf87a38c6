//! How records look on a terminal: a one-line-per-record table, JSON Lines, and one
//! record in full with its difference as a coloured before/after.

use std::io::{self, IsTerminal, Write};

use audit_runtime::{OutcomeKind, Record};
use serde_json::Value as Json;

/// Whether to colour standard output (a terminal, and `NO_COLOR` unset).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// One record per line, as stored.
pub fn json_lines(out: &mut impl Write, records: &[Record]) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A header and one line per record.
pub fn table(out: &mut impl Write, records: &[Record]) -> io::Result<()> {
    writeln!(
        out,
        "{:<19}  {:<22}  {:<26}  {:<18}  {:<7}  DESCRIPTION",
        "TIME (UTC)", "EVENT", "ACTOR", "ENTITY", "OUTCOME"
    )?;
    rows(out, records)
}

/// One line per record (no header).
pub fn rows(out: &mut impl Write, records: &[Record]) -> io::Result<()> {
    for r in records {
        writeln!(
            out,
            "{:<19}  {:<22}  {:<26}  {:<18}  {:<7}  {}",
            short_time(r),
            clip(&r.event, 22),
            clip(&actor(r), 26),
            entity(r, 18),
            outcome(r.outcome),
            clip(&r.description, 80)
        )?;
    }
    Ok(())
}

fn short_time(r: &Record) -> String {
    let t = r.time.to_string();
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(width - 1).collect();
        c.push('…');
        c
    }
}

fn actor(r: &Record) -> String {
    match &r.context.actor {
        Some(a) => a.email.clone().unwrap_or_else(|| a.id.clone()),
        None => "-".into(),
    }
}

/// `type:id` in `width` characters. A long id keeps its end: UUIDv7s share their
/// leading (time) digits, and their random tail tells them apart.
fn entity(r: &Record, width: usize) -> String {
    let Some(e) = &r.entity else {
        return "-".into();
    };
    let id = match &e.id {
        Some(Json::String(id)) => id.clone(),
        Some(id) => id.to_string(),
        None => return clip(&e.kind, width),
    };
    let full = format!("{}:{id}", e.kind);
    if full.chars().count() <= width {
        return full;
    }
    let kind = clip(&e.kind, width / 2);
    let room = width.saturating_sub(kind.chars().count() + 2);
    let tail: String = id
        .chars()
        .rev()
        .take(room)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{kind}:…{tail}")
}

fn outcome(o: OutcomeKind) -> &'static str {
    match o {
        OutcomeKind::Success => "success",
        OutcomeKind::Failure => "FAILURE",
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn before(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn after(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
}

/// One record in full; its difference as `path: old -> new` (red, green).
pub fn record(out: &mut impl Write, r: &Record, colour: bool) -> io::Result<()> {
    let p = Paint(colour);
    let field = |out: &mut dyn Write, name: &str, value: &str| -> io::Result<()> {
        writeln!(out, "{}  {value}", p.dim(&format!("{name:<11}")))
    };
    field(out, "id", &r.id.to_string())?;
    field(out, "time", &r.time.to_string())?;
    field(
        out,
        "event",
        &format!(
            "{} (code {}, category {}, level {})",
            p.bold(&r.event),
            r.code,
            r.category,
            r.level.as_str()
        ),
    )?;
    let result = match (&r.outcome, &r.error) {
        (OutcomeKind::Failure, Some(e)) => p.before(&format!("failure: {e}")),
        (OutcomeKind::Failure, None) => p.before("failure"),
        (OutcomeKind::Success, _) => "success".into(),
    };
    field(
        out,
        "outcome",
        &format!("{result} in {:.3} ms", r.duration_ns as f64 / 1e6),
    )?;
    field(out, "description", &r.description)?;
    let c = &r.context;
    if let Some(a) = &c.actor {
        let mut who = a.id.clone();
        if let Some(e) = &a.email {
            who = format!("{e} ({who})");
        }
        if let Some(i) = &c.impersonator {
            who.push_str(&format!(
                ", impersonated by {}",
                i.email.as_ref().unwrap_or(&i.id)
            ));
        }
        field(out, "actor", &who)?;
    }
    for (name, value) in [
        ("tenant", &c.tenant),
        ("environment", &c.environment),
        ("source", &c.source),
    ] {
        if let Some(v) = value {
            field(out, name, v)?;
        }
    }
    if let Some(req) = &c.request {
        let parts: Vec<String> = [("id", &req.id), ("ip", &req.ip), ("agent", &req.user_agent)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect();
        field(out, "request", &parts.join(", "))?;
    }
    if r.entity.is_some() {
        field(out, "entity", &entity(r, usize::MAX))?;
    }
    if !r.metadata.is_empty() {
        writeln!(out, "{}", p.dim("metadata"))?;
        for (k, v) in &r.metadata {
            writeln!(out, "  {k}: {v}")?;
        }
    }
    if let Some(ch) = &r.changes {
        writeln!(out, "{}", p.dim("changes"))?;
        if ch.difference.is_empty() {
            writeln!(out, "  (nothing changed)")?;
        }
        for (path, pair) in &ch.difference {
            let (old, new) = match pair {
                Json::Array(v) if v.len() == 2 => (v[0].to_string(), v[1].to_string()),
                other => ("?".into(), other.to_string()),
            };
            writeln!(out, "  {path}: {} -> {}", p.before(&old), p.after(&new))?;
        }
    }
    field(
        out,
        "site",
        &format!("{} ({}:{})", r.site.function, r.site.file, r.site.line),
    )?;
    field(out, "hash", r.hash.as_deref().unwrap_or("-"))?;
    field(out, "prev_hash", r.prev_hash.as_deref().unwrap_or("-"))
}
