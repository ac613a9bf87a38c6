//! Catalog text together with its path, and byte-offset → line/column mapping.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The text of one catalog (or lock) file and the path it was read from.
///
/// Every [`Diagnostic`](crate::Diagnostic) points into a `Source`, so that it can
/// print `file:line:column` and the offending line with a caret.
///
/// ```
/// use audit_catalog::Source;
/// let src = Source::new("audit.toml", "[catalog]\nname = 1\n");
/// assert_eq!(src.position(17).to_string(), "2:8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

/// A 1-based line and column (columns count characters, as rustc does).
///
/// ```
/// use audit_catalog::Position;
/// let p = Position { line: 3, column: 7 };
/// assert_eq!(p.to_string(), "3:7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Source {
    /// Wraps `text`, read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The path the text came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line and column of a byte offset (clamped to the text).
    pub fn position(&self, offset: usize) -> Position {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let column = self.text[self.line_starts[line]..offset].chars().count() + 1;
        Position {
            line: line + 1,
            column,
        }
    }

    /// The text of 1-based line `line`, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self
            .line_starts
            .get(line - 1)
            .copied()
            .unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The text a span covers (empty if the span is out of range).
    pub fn slice(&self, span: Range<usize>) -> &str {
        self.text.get(span).unwrap_or("")
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source::new("a.toml", "ab\né = 1\n\nx");
        assert_eq!(src.position(0), Position { line: 1, column: 1 });
        assert_eq!(src.position(3), Position { line: 2, column: 1 });
        assert_eq!(src.position(6), Position { line: 2, column: 3 });
        assert_eq!(src.position(11), Position { line: 4, column: 1 });
        assert_eq!(src.position(999), Position { line: 4, column: 2 });
        assert_eq!(src.line_text(2), "é = 1");
        assert_eq!(src.line_text(3), "");
    }
}
