// An event that does not record changes may name its entity (`entity = w` or
// `entity_id = ...`), but not both, and takes no `op`.
#[derive(Clone, audit::AuditEntity)]
#[audit(entity = "widget")]
struct Widget {
    #[audit(id)]
    id: i64,
    name: String,
}

#[audit::audited(event = "widget_create", entity = w, op = "update", meta(name = &w.name))]
fn rename(w: &mut Widget) {}

#[audit::audited(event = "widget_create", entity = w, entity_id = w.id, meta(name = &w.name))]
fn both(w: &Widget) {}

fn main() {}
