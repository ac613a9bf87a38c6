//! Who may see what: bearer tokens, each an admin's or one tenant's.

use std::collections::HashMap;
use std::path::Path;

use axum::http::HeaderMap;
use axum::http::StatusCode;

use crate::error::ApiError;

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant's records, and the store's verification.
    Admin,
    /// Only this tenant's records.
    Tenant(String),
}

/// The tokens the API accepts, or none (every caller is an admin: only for a
/// server on loopback, or behind the application's own authentication).
///
/// A token file has one token per line, `<token> admin` or `<token> tenant:<name>`;
/// blank lines and lines starting with `#` are skipped.
///
/// ```
/// use audit_viewer::{Access, Scope};
/// let access = Access::parse("s3cr3t-admin-token-0001 admin\nacme-token-000000000001 tenant:acme\n").unwrap();
/// assert_eq!(access.scope_of("acme-token-000000000001"), Some(Scope::Tenant("acme".into())));
/// assert_eq!(access.scope_of("guess"), None);
/// ```
#[derive(Clone)]
pub struct Access {
    tokens: Option<HashMap<String, Scope>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("Access")
            .field("tokens", &self.tokens.as_ref().map(HashMap::len))
            .finish()
    }
}

/// A token file that does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessError(pub String);

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccessError {}

/// Tokens shorter than this are refused: they could be guessed.
const MIN_TOKEN: usize = 16;

impl Access {
    /// No tokens: every caller is an admin.
    pub fn open() -> Self {
        Access { tokens: None }
    }

    /// Whether callers need a token.
    pub fn needs_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// Tokens from a token file's text (see the type's documentation).
    pub fn parse(text: &str) -> Result<Self, AccessError> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: &str| AccessError(format!("line {}: {m}", i + 1));
            let mut words = line.split_whitespace();
            let (Some(token), Some(scope), None) = (words.next(), words.next(), words.next())
            else {
                return Err(at("write `<token> admin` or `<token> tenant:<name>`"));
            };
            if token.len() < MIN_TOKEN {
                return Err(at(&format!("a token needs {MIN_TOKEN} characters or more")));
            }
            let scope = match scope.split_once(':') {
                None if scope == "admin" => Scope::Admin,
                Some(("tenant", t)) if !t.is_empty() => Scope::Tenant(t.to_owned()),
                _ => return Err(at("the scope is `admin` or `tenant:<name>`")),
            };
            if tokens.insert(token.to_owned(), scope).is_some() {
                return Err(at("this token is listed twice"));
            }
        }
        if tokens.is_empty() {
            return Err(AccessError("the token file lists no token".into()));
        }
        Ok(Access {
            tokens: Some(tokens),
        })
    }

    /// Tokens from a token file.
    pub fn read(path: &Path) -> Result<Self, AccessError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AccessError(format!("`{}`: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| AccessError(format!("`{}`: {e}", path.display())))
    }

    /// The scope of `token` (compared in constant time), if it is known.
    pub fn scope_of(&self, token: &str) -> Option<Scope> {
        let tokens = self.tokens.as_ref()?;
        let mut found = None;
        for (t, scope) in tokens {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) {
                found = Some(scope.clone());
            }
        }
        found
    }

    /// The caller's scope, from its `Authorization: Bearer` header.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<Scope, ApiError> {
        if self.tokens.is_none() {
            return Ok(Scope::Admin);
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "send `Authorization: Bearer <token>`",
                )
            })?;
        self.scope_of(token.trim())
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown token"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_strict() {
        for (text, why) in [
            ("short admin", "16 characters"),
            ("0123456789abcdef0 root", "the scope"),
            ("0123456789abcdef0 tenant:", "the scope"),
            ("0123456789abcdef0", "write"),
            ("0123456789abcdef0 admin\n0123456789abcdef0 admin", "twice"),
            ("# nothing\n", "no token"),
        ] {
            let e = Access::parse(text).unwrap_err();
            assert!(e.0.contains(why), "{text}: {e}");
        }
        assert!(
            !format!("{:?}", Access::parse("0123456789abcdef0 admin").unwrap()).contains("0123")
        );
    }
}
