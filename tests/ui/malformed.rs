#[audit::audited(event = dashboard_create, meta(name = "x"))]
fn a() {}

#[audit::audited(evnt = "dashboard_create", meta(name = "x"))]
fn b() {}

#[audit::audited(event = "dashboard_create", meta(name: "x"))]
fn c() {}

#[audit::audited(event = "dashboard_create", meta(name = "x"), on = "sometimes")]
fn d() {}

#[audit::audited(event = "dashboard_create", event = "dashboard_delete", meta(name = "x"))]
fn e() {}

#[audit::audited(meta(name = "x"))]
fn f() {}

// Every key goes through the same repeat check, `emit_unchanged` included.
#[audit::audited(event = "dashboard_create", meta(name = "x"), emit_unchanged = false, emit_unchanged = true)]
fn g() {}

fn main() {}
