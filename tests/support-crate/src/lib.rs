//! A second crate with `#[audited]` sites and its own catalog (`audit.toml` here), so
//! that the workspace tests the registry across crates and catalogs.

use audit::{AuditEntity, audited};

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

/// A sign-in whose error quotes the password, as careless handlers do (the record's
/// error has it scrubbed).
#[audited(
    event = "account_sign_in",
    meta(login = &s.login, ip = &s.ip, attempts = 1u32, password = &s.password, risk = 0.0,
         mfa = false, at = std::time::SystemTime::UNIX_EPOCH, extra = &s.extra,
         roles = Vec::<String>::new(), scores = None::<Vec<i64>>)
)]
pub fn sign_in_quoting(s: &SignIn) -> Result<(), String> {
    Err(format!("wrong password {} for {}", s.password, s.login))
}

/// A sign-in whose handler panics with a message quoting a secret nested in `extra`.
#[audited(
    event = "account_sign_in",
    meta(login = &s.login, ip = &s.ip, attempts = 1u32, password = &s.password, risk = 0.0,
         mfa = false, at = std::time::SystemTime::UNIX_EPOCH, extra = &s.extra,
         roles = Vec::<String>::new(), scores = None::<Vec<i64>>)
)]
pub fn sign_in_panicking(s: &SignIn, quoted: &str) {
    panic!("token {quoted} rejected");
}

/// An account, audited field by field: its token is muted by the built-in list, its
/// card number by the event's `card_*` pattern, neither by an attribute here.
#[derive(Clone, AuditEntity)]
#[audit(entity = "account")]
pub struct Account {
    /// Id.
    #[audit(id)]
    pub id: i64,
    /// Plan name.
    pub plan: String,
    /// API token.
    pub api_token: String,
    /// Card on file.
    pub card_number: String,
    /// Free-form settings, where secrets hide too.
    pub settings: serde_json::Value,
}

/// Changes an account; fails quoting the card when the plan is `declined`.
#[audited(event = "account_update", entity = account, meta(account_id = account.id))]
pub fn update_account(
    account: &mut Account,
    plan: &str,
    token: &str,
    card: &str,
) -> Result<(), String> {
    account.plan = plan.to_string();
    account.api_token = token.to_string();
    account.card_number = card.to_string();
    if plan == "declined" {
        return Err(format!("card {card} was declined"));
    }
    Ok(())
}
