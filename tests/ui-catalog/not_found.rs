#[audit::audited(event = "app_add", meta(id = 1, uid = "u", name = "n", app_nid = "a"))]
fn add() {}

fn main() {
    add();
}
