#[audit::audited(event = "dashboard_create", meta(name = "x"))]
struct Dashboard;

fn main() {}
