//! Events that do not record changes name their entity: by the entity itself or by
//! its id alone.
#![deny(warnings)]

use audit::testing::capture;

#[derive(Clone, audit::AuditEntity)]
#[audit(entity = "widget")]
struct Widget {
    #[audit(id)]
    id: i64,
    name: String,
}

#[audit::audited(event = "widget_create", entity = w, meta(name = &w.name))]
fn add(w: Widget) -> Widget {
    w
}

#[audit::audited(event = "widget_delete", entity_id = id, meta(name = "gone"))]
fn delete(id: i64) -> Result<(), String> {
    Err(format!("widget {id} is locked"))
}

fn main() {
    let records = capture(|| {
        add(Widget { id: 7, name: "clock".into() });
        let _ = delete(8);
    });
    let ids: Vec<_> = records
        .iter()
        .map(|r| r.entity.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids, [Some(serde_json::json!(7)), Some(serde_json::json!(8))]);
    assert!(records.iter().all(|r| r.changes.is_none()));
}
