struct App {
    id: i64,
    name: String,
}

#[audit::audited(event = "app_add", meta(id = app.id, name = &app.name))]
fn add(app: &App) {}

fn main() {
    add(&App { id: 1, name: "CRM".into() });
}
