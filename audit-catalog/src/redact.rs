//! Which keys are redacted: the catalog's `redact` entries (names or patterns) and a
//! built-in list of the names secrets usually go by, matched case-insensitively.
//!
//! A pattern holds `*` (any run of characters, none included) or `?` (exactly one
//! character): `*token*`, `*_secret`, `api?key`. A plain name matches the whole key.
//!
//! ```
//! use audit_catalog::redact;
//! assert!(redact::matches("*token*", "Access_Token"));
//! assert!(redact::matches("api?key", "API-KEY"));
//! assert!(!redact::matches("api?key", "apikey"));
//! let catalog: &[&str] = &["card_number"];
//! assert!(redact::is_redacted(catalog, "Card_Number"));
//! assert!(redact::is_redacted(catalog, "apiKey"), "built in");
//! assert!(!redact::is_redacted(catalog, "name"));
//! ```

/// Names secrets usually go by, redacted in every event whatever the catalog says:
/// passwords, tokens, secrets, API and private keys, credentials, authorization
/// headers, cookies and sessions.
pub const BUILTIN: &[&str] = &[
    "*password*",
    "*passwd*",
    "*passphrase*",
    "*secret*",
    "*token*",
    "*api?key*",
    "*apikey*",
    "*private?key*",
    "*credential*",
    "authorization",
    "proxy-authorization",
    "*cookie*",
    "*session?id*",
    "*sessionid*",
];

/// Whether `entry` is a pattern (holds `*` or `?`) rather than a name.
pub fn is_pattern(entry: &str) -> bool {
    entry.contains(['*', '?'])
}

/// Whether `key` matches `pattern`, ignoring case.
pub fn matches(pattern: &str, key: &str) -> bool {
    if pattern.is_ascii() && key.is_ascii() {
        // The common case, without allocating: keys are compared on every redaction.
        glob(pattern.as_bytes(), key.as_bytes(), |b| {
            b.to_ascii_lowercase()
        })
    } else {
        let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
        let k: Vec<char> = key.chars().flat_map(char::to_lowercase).collect();
        glob(&p, &k, |c| c)
    }
}

/// Iterative glob with one backtrack point (the last `*`): linear in practice.
fn glob<T: Copy + PartialEq + From<u8>>(p: &[T], k: &[T], fold: impl Fn(T) -> T) -> bool {
    let (star_t, any_t) = (T::from(b'*'), T::from(b'?'));
    let (mut pi, mut ki) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        match p.get(pi).copied() {
            Some(c) if c == star_t => {
                star = Some((pi, ki));
                pi += 1;
            }
            Some(c) if c == any_t || fold(c) == fold(k[ki]) => {
                pi += 1;
                ki += 1;
            }
            _ => match star {
                Some((sp, sk)) => {
                    pi = sp + 1;
                    ki = sk + 1;
                    star = Some((sp, sk + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == star_t)
}

/// Whether `key` is redacted under the catalog's entries `redact` (names or
/// patterns) or the [`BUILTIN`] list.
pub fn is_redacted<S: AsRef<str>>(redact: &[S], key: &str) -> bool {
    redact.iter().any(|p| matches(p.as_ref(), key)) || BUILTIN.iter().any(|p| matches(p, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, k, m) in [
            ("password", "password", true),
            ("password", "PASSWORD", true),
            ("password", "passwords", false),
            ("*_secret", "client_secret", true),
            ("*_secret", "secret", false),
            ("*token*", "token", true),
            ("*token*", "refreshTokenValue", true),
            ("api?key", "api_key", true),
            ("api?key", "apikey", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*", "", true),
            ("?", "", false),
            ("ß*", "SS", false),
        ] {
            assert_eq!(matches(p, k), m, "{p} ~ {k}");
        }
    }

    #[test]
    fn builtins_cover_the_common_names() {
        let none: &[&str] = &[];
        for k in [
            "password",
            "Password",
            "new_password",
            "passwd",
            "secret",
            "client_secret",
            "access_token",
            "refreshToken",
            "api_key",
            "apiKey",
            "x-api-key",
            "private_key",
            "credentials",
            "Authorization",
            "cookie",
            "Set-Cookie",
            "session_id",
            "sessionId",
        ] {
            assert!(is_redacted(none, k), "{k}");
        }
        for k in ["name", "email", "id", "count", "keyboard", "author"] {
            assert!(!is_redacted(none, k), "{k}");
        }
    }
}
