#[derive(Clone, audit::AuditEntity)]
#[audit(entity = "widget")]
struct Widget {
    #[audit(id)]
    id: i64,
    name: String,
}

#[audit::audited(event = "widget_create", entity = w, meta(name = &w.name))]
fn rename(w: &mut Widget) {}

fn main() {}
