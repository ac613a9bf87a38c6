//! A second crate with `#[audited]` sites and its own catalog (`audit.toml` here), so
//! that the workspace tests the registry across crates and catalogs.

use audit::audited;

/// A sign-in attempt.
pub struct SignIn {
    /// Login name.
    pub login: String,
    /// Client address, when known.
    pub ip: Option<String>,
    /// The password typed (never recorded: the catalog redacts it).
    pub password: String,
    /// Extra JSON, with a nested secret (`token`) the catalog redacts.
    pub extra: serde_json::Value,
}

/// Fails when `attempts` is above 3.
#[audited(
    event = "account_sign_in",
    meta(
        login = &s.login,
        ip = &s.ip,
        attempts = attempts,
        password = &s.password,
        risk = 0.25,
        mfa = true,
        at = std::time::SystemTime::UNIX_EPOCH,
        extra = &s.extra,
        roles = vec!["admin", "ops"],
        scores = Some(vec![1, -2]),
    )
)]
pub fn sign_in(s: &SignIn, attempts: u32) -> Result<u64, String> {
    if attempts > 3 {
        return Err(format!("too many attempts: {attempts}"));
    }
    Ok(42)
}

/// Closes an account; the reason is optional and left out.
#[audited(event = "account_close", meta(account_id = id))]
pub fn close(id: i64) {}

/// A sign-in whose every value comes from the caller: the odd ones (dates before
/// 1970, NaN, deep or huge JSON) included.
#[audited(
    event = "account_sign_in",
    meta(
        login = &s.login,
        ip = &s.ip,
        attempts = 1u32,
        password = &s.password,
        risk = risk,
        mfa = false,
        at = at,
        extra = &s.extra,
        roles = roles,
        scores = None::<Vec<i64>>,
    )
)]
pub fn sign_in_at(s: &SignIn, risk: f64, at: std::time::SystemTime, roles: &[String]) {}
