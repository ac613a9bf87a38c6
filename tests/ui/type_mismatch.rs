struct App {
    id: String,
    uid: String,
    name: String,
    nid: String,
}

#[audit::audited(event = "app_launch", meta(id = &app.id, uid = &app.uid, name = &app.name, app_nid = app.nid.len()))]
fn launch(app: &App) {}

fn main() {
    launch(&App { id: "7".into(), uid: "u".into(), name: "n".into(), nid: "x".into() });
}
