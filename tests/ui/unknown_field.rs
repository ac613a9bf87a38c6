#[audit::audited(event = "dashboard_create", meta(name = "Sales", dashboard_nme = "x"))]
fn create() {}

#[audit::audited(event = "widget_delete", meta(name = "w", owner = 3))]
fn delete() {}

fn main() {
    create();
    delete();
}
