#[audit::audited(event = "app_ad", meta(id = 1, uid = "u", name = "n", app_nid = "a"))]
fn add() {}

fn main() {
    add();
}
