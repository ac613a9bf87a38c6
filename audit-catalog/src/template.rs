//! Description (`%{field}`) and alias (`{field}`) templates.

use std::fmt::Write;
use std::ops::Range;

/// Which placeholder syntax a template uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `%{field}`, as in descriptions (`"%{name} added"`); `%%` is a literal `%`.
    Percent,
    /// `{field}`, as in aliases (`"added-app-{app_nid}"`); `{{` and `}}` are literal braces.
    Brace,
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A placeholder; `at` is the byte range of the whole placeholder in the template.
    Field {
        /// The field name inside the braces.
        name: String,
        /// Byte range of the placeholder (`%{name}`) inside the template text.
        at: Range<usize>,
    },
}

/// A parsed template.
///
/// ```
/// use audit_catalog::{Template, Syntax};
/// let t = Template::parse("Dashboard '%{name}' created", Syntax::Percent).unwrap();
/// assert_eq!(t.fields().collect::<Vec<_>>(), vec!["name"]);
/// assert_eq!(t.render(|f| (f == "name").then(|| "Sales".to_string())), "Dashboard 'Sales' created");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
}

/// A template that does not parse: an unclosed or empty placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte range of the bad placeholder inside the template.
    pub at: Range<usize>,
    /// What is wrong.
    pub message: String,
}

impl Template {
    /// Parses `text` with the given placeholder syntax.
    pub fn parse(text: &str, syntax: Syntax) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let b = text.as_bytes();
        let open_len = match syntax {
            Syntax::Percent => 2,
            Syntax::Brace => 1,
        };
        while i < b.len() {
            let (escape, opens) = match syntax {
                Syntax::Percent => (
                    b[i] == b'%' && b.get(i + 1) == Some(&b'%'),
                    b[i] == b'%' && b.get(i + 1) == Some(&b'{'),
                ),
                Syntax::Brace => (
                    (b[i] == b'{' && b.get(i + 1) == Some(&b'{'))
                        || (b[i] == b'}' && b.get(i + 1) == Some(&b'}')),
                    b[i] == b'{',
                ),
            };
            if escape {
                lit.push(b[i] as char);
                i += 2;
            } else if opens {
                let start = i;
                let Some(close) = text[i..].find('}').map(|c| i + c) else {
                    return Err(TemplateError {
                        at: start..text.len(),
                        message: "unclosed placeholder: add `}`".into(),
                    });
                };
                let name = text[start + open_len..close].trim();
                if name.is_empty() {
                    return Err(TemplateError {
                        at: start..close + 1,
                        message: "empty placeholder: put a field name inside the braces".into(),
                    });
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Field {
                    name: name.to_owned(),
                    at: start..close + 1,
                });
                i = close + 1;
            } else {
                let ch = text[i..].chars().next().expect("in bounds");
                lit.push(ch);
                i += ch.len_utf8();
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template {
            text: text.to_owned(),
            pieces,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed pieces.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The field names the template refers to, in order (with repeats).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Renders with `value(field)`; a field with no value renders as nothing.
    pub fn render(&self, mut value: impl FnMut(&str) -> Option<String>) -> String {
        self.render_with(|name, out| {
            if let Some(v) = value(name) {
                let _ = write!(out, "{v}");
            }
        })
    }

    /// Renders with `write(field, out)` appending each field's value to `out` (no
    /// string per field).
    ///
    /// ```
    /// use audit_catalog::{Syntax, Template};
    /// let t = Template::parse("%{name} added", Syntax::Percent).unwrap();
    /// assert_eq!(t.render_with(|f, out| out.push_str(&f.to_uppercase())), "NAME added");
    /// ```
    pub fn render_with(&self, mut write: impl FnMut(&str, &mut String)) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { name, .. } => write(name, &mut out),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_positions() {
        let t = Template::parse("100%% of {{x}} %{a}-%{ b }", Syntax::Percent).unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(
            t.pieces()[1],
            Piece::Field {
                name: "a".into(),
                at: 15..19
            }
        );
        assert_eq!(t.render(|f| Some(f.to_uppercase())), "100% of {{x}} A-B");
        let a = Template::parse("added-app-{app_nid}{{}}", Syntax::Brace).unwrap();
        assert_eq!(a.render(|_| Some("crm".into())), "added-app-crm{}");
    }

    #[test]
    fn broken_placeholders() {
        assert_eq!(
            Template::parse("x %{name", Syntax::Percent).unwrap_err().at,
            2..8
        );
        assert_eq!(Template::parse("{}", Syntax::Brace).unwrap_err().at, 0..2);
    }
}
