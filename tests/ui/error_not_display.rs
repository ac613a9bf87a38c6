#[derive(Debug)]
struct Locked;

#[audit::audited(event = "dashboard_delete", meta(name = "x"))]
fn delete() -> Result<(), Locked> {
    Err(Locked)
}

fn main() {
    let _ = delete();
}
