//! The endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::State as Viewer;
use crate::access::Scope;
use crate::error::ApiError;
use crate::params;

type Answer = Result<Json<Value>, ApiError>;

/// `GET /api/session`: the caller's scope, for the page to show what applies.
pub(crate) async fn session(State(v): State<Arc<Viewer>>, headers: HeaderMap) -> Answer {
    let tokens = v.access.needs_tokens();
    Ok(Json(match v.access.check(&headers)? {
        Scope::Admin => json!({"scope": "admin", "tenant": null, "tokens": tokens}),
        Scope::Tenant(t) => json!({"scope": "tenant", "tenant": t, "tokens": tokens}),
    }))
}

/// `GET /api/records?<filters>`.
pub(crate) async fn records(
    State(v): State<Arc<Viewer>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let scope = v.access.check(&headers)?;
    let query = params::query(raw.as_deref(), &scope)?;
    let page = v
        .stores
        .with(move |store| store.query(&query).map_err(ApiError::store))
        .await?;
    Ok(Json(json!({
        "records": page.records,
        "next": page.next.map(|c| c.to_string()),
    })))
}

/// `GET /api/records/{id}`: not found when it is another tenant's.
pub(crate) async fn record(
    State(v): State<Arc<Viewer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let scope = v.access.check(&headers)?;
    let id: uuid::Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a record id")))?;
    let tenant = match scope {
        Scope::Admin => None,
        Scope::Tenant(t) => Some(t),
    };
    let found = v
        .stores
        .with(move |store| store.get_in(id, tenant.as_deref()).map_err(ApiError::store))
        .await?;
    match found {
        Some(r) => Ok(Json(json!(r))),
        None => Err(ApiError::not_found(format!("no record {id}"))),
    }
}

/// `GET /api/verify`: the whole store's report, for admins.
pub(crate) async fn verify(State(v): State<Arc<Viewer>>, headers: HeaderMap) -> Answer {
    if v.access.check(&headers)? != Scope::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "verification covers every tenant: an admin token is needed",
        ));
    }
    let report = v
        .stores
        .with(|store| store.verify().map_err(ApiError::store))
        .await?;
    Ok(Json(json!({
        "intact": report.is_intact(),
        "rows": report.rows,
        "algorithm": report.algorithm,
        "producers": report.producers,
        "continued": report.continued,
        "erased": report.erased,
        "purged": report.anchor.as_ref().map(|a| a.purged),
        "first_break": report.first_break.as_ref().map(|b| json!({
            "seq": b.seq(),
            "id": b.id(),
            "what": b.to_string(),
        })),
    })))
}

/// Anything else.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}
