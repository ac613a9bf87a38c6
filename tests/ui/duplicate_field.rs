#[audit::audited(event = "dashboard_delete", meta(name = "a", name = "b"))]
fn delete() {}

fn main() {
    delete();
}
