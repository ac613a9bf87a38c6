//! `GET /api/catalog`: the events a caller can filter by — those the viewer's
//! catalogs declare (codes, fields, templates) and those the store holds records
//! of, with the time of the newest record the caller may see.

use std::collections::BTreeMap;
use std::sync::Arc;

use audit_catalog::Catalog;
use audit_runtime::store::SeenEvent;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::State as Viewer;
use crate::access::Scope;
use crate::error::ApiError;

/// `GET /api/catalog` → `{"events": [...]}`, by name. A tenant token sees every
/// declared event (the catalog is no secret) but only its own tenant's `last_seen`,
/// and no event that only other tenants' records hold.
pub(crate) async fn catalog(
    State(v): State<Arc<Viewer>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = match v.access.check(&headers)? {
        Scope::Admin => None,
        Scope::Tenant(t) => Some(t),
    };
    let seen = v
        .stores
        .with(move |store| {
            store
                .events_seen(tenant.as_deref())
                .map_err(ApiError::store)
        })
        .await?;
    Ok(Json(json!({ "events": events(&v.catalogs, seen) })))
}

/// The declared events and the seen ones, merged by name.
fn events(catalogs: &[Catalog], seen: Vec<SeenEvent>) -> Vec<Value> {
    let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
    for catalog in catalogs {
        for e in &catalog.events {
            by_name.entry(e.name.clone()).or_insert_with(|| {
                json!({
                    "name": e.name,
                    "code": e.code,
                    "category": e.category,
                    "level": e.level.as_str(),
                    "title": e.title,
                    "description": e.description.as_ref().map(|t| t.as_str()),
                    "failure": e.failure_text(),
                    "entity": e.entity,
                    "changes": e.changes,
                    "retired": e.retired,
                    "fields": e.fields.iter().map(|f| json!({
                        "name": f.name,
                        "type": f.ty.to_string(),
                        "doc": f.doc,
                        "indexed": f.indexed,
                        "redacted": f.redact,
                    })).collect::<Vec<_>>(),
                    "catalog": catalog.name,
                    "declared": true,
                    "last_seen": null,
                })
            });
        }
    }
    for s in seen {
        let entry = by_name.entry(s.event.clone()).or_insert_with(|| {
            json!({
                "name": s.event,
                "code": s.code,
                "category": s.category,
                "level": s.level.as_str(),
                "declared": false,
            })
        });
        entry["last_seen"] = json!(s.last);
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_runtime::{Level, Timestamp};

    #[test]
    fn declared_and_seen_events_merge_by_name() {
        let catalog = Catalog::parse(
            "audit.toml",
            r#"
            [catalog]
            name = "shop"
            [events.order_place]
            code = 1
            category = "order"
            description = "placed %{order_id}"
            fields = { order_id = "string" }
            [events.order_cancel]
            code = 2
            category = "order"
            "#,
        )
        .unwrap();
        let seen = |event: &str, code| SeenEvent {
            event: event.into(),
            code,
            category: "x".into(),
            level: Level::Info,
            last: Timestamp::from_nanos(1_000),
        };
        let events = events(&[catalog], vec![seen("order_place", 1), seen("legacy", 9)]);
        let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["legacy", "order_cancel", "order_place"]);
        assert_eq!(events[0]["declared"], false);
        assert_eq!(events[1]["last_seen"], Value::Null);
        assert_eq!(events[2]["description"], "placed %{order_id}");
        assert_eq!(events[2]["fields"][0]["type"], "string");
        assert!(events[2]["last_seen"].is_string());
    }
}
