#[audit::audited(event = "user_update", meta(user_email = "a@example.com"))]
fn update() {}

fn main() {
    update();
}
