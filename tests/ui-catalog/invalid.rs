// A bad catalog is reported once, at the first site, not once per site.
#[audit::audited(event = "app_add", meta(id = 1, uid = "u", name = "n", app_nid = "a"))]
fn add() {}

#[audit::audited(event = "app_add", meta(id = 2, uid = "v", name = "m", app_nid = "b"))]
fn add_again() {}

#[audit::audited(event = "app_destroy", meta(id = 2, uid = "v", name = "m", app_nid = "b"))]
fn destroy() {}

fn main() {
    add();
    add_again();
    destroy();
}
