//! Typed catalog errors that carry their file, span and a hint, and render like rustc.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::source::{Position, Source};

/// What is wrong. Every variant is something a user can fix in `audit.toml`
/// (or in `audit.lock`); the [`Diagnostic`] says where and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file is not valid TOML.
    Syntax,
    /// A key that the catalog format does not define.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong TOML type (a string where an integer belongs, ...).
    WrongType,
    /// A value of the right type that is not allowed (`level = "loud"`).
    InvalidValue,
    /// An event or entity code that is zero, negative or too large.
    NonPositiveCode,
    /// Two events share a code.
    DuplicateEventCode,
    /// Two entities share a code.
    DuplicateEntityCode,
    /// An event's `entity` is not declared in `[entities]`.
    UnknownEntity,
    /// A field type outside `string int uint float bool timestamp json`, `T?`, `[T]`.
    UnknownFieldType,
    /// A `%{x}` / `{x}` placeholder names no field of its event.
    UnknownPlaceholder,
    /// `changes = true` (or `reverts`, `summary`) on an event that has no `entity`.
    ChangesWithoutEntity,
    /// An event, field, category or alias name that is not a `snake_case` identifier,
    /// or a reserved name.
    InvalidName,
    /// A `redact` key that names no field of the event.
    UnknownRedactKey,
    /// The code of a locked event or entity changed.
    LockCodeChanged,
    /// A code that the lock file gives to another name.
    LockCodeReused,
    /// A locked event is gone from the catalog without `retired = true`.
    LockEventVanished,
    /// A locked entity is gone from the catalog.
    LockEntityVanished,
    /// The lock file itself is malformed.
    LockMalformed,
}

/// One error in a catalog or lock file: kind, message, where, and what to do.
///
/// `Display` prints the one-line form `file:line:col: message` (the hint is left
/// to [`Diagnostic::hint`]); [`Diagnostic::render`]
/// adds the source line with a caret and the hint, like rustc.
///
/// ```
/// use audit_catalog::{Catalog, ErrorKind};
/// let err = Catalog::parse("audit.toml", "[catalog]\nname = \"x\"\nnam = \"y\"\n").unwrap_err();
/// let d = &err.diagnostics()[0];
/// assert_eq!(d.kind(), ErrorKind::UnknownKey);
/// assert_eq!(d.to_string(), "audit.toml:3:1: unknown key `nam` in [catalog]");
/// assert!(d.render().contains("did you mean `name`?"));
/// ```
#[derive(Debug, Clone)]
pub struct Diagnostic {
    kind: ErrorKind,
    message: String,
    help: Option<String>,
    source: Arc<Source>,
    span: Range<usize>,
}

impl Diagnostic {
    pub(crate) fn new(
        kind: ErrorKind,
        source: &Arc<Source>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            kind,
            message: message.into(),
            help: None,
            source: Arc::clone(source),
            span,
        }
    }

    pub(crate) fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// What kind of mistake this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to do about it, if there is more to say than the message.
    pub fn hint(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The file the error is in.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Byte range of the offending text.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// 1-based line and column where the offending text starts.
    pub fn position(&self) -> Position {
        self.source.position(self.span.start)
    }

    /// The rustc-like multi-line form: message, `--> file:line:col`, the source line
    /// with a caret under the offending text, and the hint.
    pub fn render(&self) -> String {
        let pos = self.position();
        let line = self.source.line_text(pos.line);
        let gutter = pos.line.to_string().len();
        let pad = " ".repeat(gutter);
        let end = self.source.position(self.span.end.max(self.span.start + 1));
        let width = if end.line == pos.line && end.column > pos.column {
            end.column - pos.column
        } else {
            1
        };
        let mut out = format!(
            "error: {}\n{pad}--> {}:{}\n{pad} |\n{} | {}\n{pad} | {}{}\n",
            self.message,
            self.source.path().display(),
            pos,
            pos.line,
            line,
            " ".repeat(pos.column - 1),
            "^".repeat(width)
        );
        if let Some(help) = &self.help {
            out.push_str(&format!("{pad} = help: {help}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.source.path().display(),
            self.position(),
            self.message
        )
    }
}

impl std::error::Error for Diagnostic {}
