//! The filters of `GET /api/records` (the store's query model, as URL parameters),
//! narrowed to the caller's scope.

use std::time::SystemTime;

use audit_runtime::store::{Cursor, Order, Query};
use audit_runtime::{Level, OutcomeKind, Timestamp};

use crate::access::Scope;
use crate::error::ApiError;

/// `2d`, `90m` (that long ago) or an RFC 3339 time.
fn time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    if let Ok(d) = humantime::parse_duration(v) {
        return Ok(Timestamp::from(SystemTime::now() - d));
    }
    v.parse::<Timestamp>().map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}={v}`: give an RFC 3339 time or an age such as 2d or 90m"
        ))
    })
}

/// Splits a URL's parameters into an endpoint's `own` ones and the rest (the
/// query's filters, encoded again for [`query`]).
pub(crate) fn split(raw: Option<&str>, own: &[&str]) -> (Vec<(String, String)>, String) {
    let mut mine = Vec::new();
    let mut filters = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if own.contains(&&*k) {
            mine.push((k.into_owned(), v.into_owned()));
        } else {
            filters.append_pair(&k, &v);
        }
    }
    (mine, filters.finish())
}

/// The query of a URL's parameters, as `scope` may see it. A tenant scope cannot
/// be widened: asking for another tenant is refused.
pub(crate) fn query(raw: Option<&str>, scope: &Scope) -> Result<Query, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let asked_tenant = pairs
        .iter()
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.clone());
    let mut q = match (scope, asked_tenant) {
        (Scope::Admin, Some(t)) => Query::for_tenant(t),
        (Scope::Admin, None) => Query::all(),
        (Scope::Tenant(mine), Some(t)) if t != *mine => {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                format!("this token sees tenant `{mine}` only"),
            ));
        }
        (Scope::Tenant(mine), _) => Query::for_tenant(mine),
    };
    for (k, v) in &pairs {
        q = match k.as_str() {
            "tenant" => q,
            "since" => q.since(time(k, v)?),
            "until" => q.until(time(k, v)?),
            "event" => q.events([v.as_str()]),
            "category" => q.categories([v.as_str()]),
            "code" => q.codes([v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("`code={v}` is not a code")))?]),
            "actor" => q.actor(v),
            "entity" => match v.split_once(':') {
                Some((kind, id)) => q.entity(kind, Some(id)),
                None => q.entity_type(v),
            },
            "outcome" => q.outcome(match v.as_str() {
                "success" => OutcomeKind::Success,
                "failure" => OutcomeKind::Failure,
                _ => return Err(ApiError::bad_request("`outcome` is `success` or `failure`")),
            }),
            "level" => q.levels([match v.as_str() {
                "info" => Level::Info,
                "warn" => Level::Warn,
                "error" => Level::Error,
                _ => {
                    return Err(ApiError::bad_request(
                        "`level` is `info`, `warn` or `error`",
                    ));
                }
            }]),
            "q" => q.text(v),
            "operation" => q.operation(v.parse().map_err(|_| {
                ApiError::bad_request(format!("`operation={v}` is not a record id"))
            })?),
            "field" => {
                let (name, value) = v.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!("`field={v}`: write it as name=value"))
                })?;
                q.field(name, value)
            }
            "order" => q.order(match v.as_str() {
                "newest" => Order::NewestFirst,
                "oldest" => Order::OldestFirst,
                _ => return Err(ApiError::bad_request("`order` is `newest` or `oldest`")),
            }),
            "limit" => q.limit(
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("`limit={v}` is not a number")))?,
            ),
            "cursor" => q.after(
                v.parse::<Cursor>()
                    .map_err(|_| ApiError::bad_request(format!("invalid cursor `{v}`")))?,
            ),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown filter `{other}` (see the API's documentation)"
                )));
            }
        };
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_scope_cannot_be_widened_and_bad_filters_are_named() {
        let acme = Scope::Tenant("acme".into());
        assert_eq!(query(None, &acme).unwrap(), Query::for_tenant("acme"));
        assert_eq!(
            query(Some("tenant=acme"), &acme).unwrap(),
            Query::for_tenant("acme")
        );
        assert_eq!(query(Some("tenant=globex"), &acme).unwrap_err().status, 403);
        assert_eq!(
            query(Some("event=a&event=b&limit=5"), &Scope::Admin).unwrap(),
            Query::all().events(["a", "b"]).limit(5)
        );
        for (raw, says) in [
            ("since=yesterday", "RFC 3339"),
            ("outcome=maybe", "success"),
            ("cursor=nope", "invalid cursor"),
            ("colour=red", "unknown filter `colour`"),
            ("field=x", "name=value"),
        ] {
            let e = query(Some(raw), &Scope::Admin).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(says), "{raw}: {}", e.message);
        }
    }
}
