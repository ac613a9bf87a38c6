//! Records on standard output or standard error.

use std::io::Write;

use super::{Batch, Sink, SinkError};
use crate::record::{OutcomeKind, Record};

#[derive(Clone, Copy)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Writes each record as one line to standard output (or error): readable text or JSON.
///
/// ```
/// let human = audit_runtime::sinks::Console::human();
/// let json = audit_runtime::sinks::Console::json().stderr();
/// # let _ = (human, json);
/// ```
pub struct Console {
    format: Format,
    stream: Stream,
    name: String,
}

impl Console {
    /// `2026-11-23T09:30:00.1Z info  app_add success u-1@acme "CRM added"`.
    pub fn human() -> Self {
        Console {
            format: Format::Human,
            stream: Stream::Stdout,
            name: "console".into(),
        }
    }

    /// One JSON object per line.
    pub fn json() -> Self {
        Console {
            format: Format::Json,
            stream: Stream::Stdout,
            name: "console-json".into(),
        }
    }

    /// To standard error instead.
    pub fn stderr(mut self) -> Self {
        self.stream = Stream::Stderr;
        self
    }

    /// One record as the human line.
    pub fn human_line(r: &Record, name: &str) -> String {
        let actor = r
            .context
            .actor
            .as_ref()
            .map(|a| a.id.as_str())
            .unwrap_or("-");
        let tenant = r
            .context
            .tenant
            .as_deref()
            .map(|t| format!("@{t}"))
            .unwrap_or_default();
        let outcome = match (&r.outcome, &r.error) {
            (OutcomeKind::Success, _) => "success".to_owned(),
            (OutcomeKind::Failure, Some(e)) => format!("failure ({e})"),
            (OutcomeKind::Failure, None) => "failure".to_owned(),
        };
        format!(
            "{} {:<5} {} {} {actor}{tenant} {:?}",
            r.time,
            r.level.as_str(),
            name,
            outcome,
            r.description
        )
    }
}

impl Sink for Console {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let mut out = Vec::with_capacity(batch.len() * 256);
        for item in batch {
            match self.format {
                Format::Human => out
                    .extend_from_slice(Console::human_line(item.record(), item.name()).as_bytes()),
                Format::Json => out.extend_from_slice(item.json().as_bytes()),
            }
            out.push(b'\n');
        }
        match self.stream {
            Stream::Stdout => std::io::stdout().lock().write_all(&out)?,
            Stream::Stderr => std::io::stderr().lock().write_all(&out)?,
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        match self.stream {
            Stream::Stdout => std::io::stdout().flush()?,
            Stream::Stderr => std::io::stderr().flush()?,
        }
        Ok(())
    }
}
