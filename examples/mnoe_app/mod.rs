//! The MnoEnterprise handlers shared by the examples: app, dashboard, widget and user
//! events on `examples/catalogs/mnoe.toml`, and a scenario that runs them as two
//! users of two tenants (one call failing, one entity update).

use std::fmt;

use audit::{Actor, Context, audited, scope};

#[derive(Debug, Clone)]
struct App {
    id: i64,
    uid: String,
    name: String,
    nid: String,
}

#[derive(Debug)]
enum Error {
    NotFound(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
        }
    }
}

#[audited(event = "app_add", meta(id = ret.id, uid = &ret.uid, name = &ret.name, app_nid = &ret.nid))]
fn add_app(name: &str, nid: &str) -> Result<App, Error> {
    Ok(App {
        id: 2,
        uid: "cld-7y9h".into(),
        name: name.into(),
        nid: nid.into(),
    })
}

#[audited(event = "app_launch", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid))]
fn launch_app(app: &App) -> Result<(), Error> {
    Ok(())
}

#[audited(event = "app_destroy", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid))]
fn destroy_app(app: &App, installed: &[String]) -> Result<(), Error> {
    if !installed.contains(&app.nid) {
        return Err(Error::NotFound(format!("app {}", app.nid)));
    }
    Ok(())
}

#[audited(event = "dashboard_create", meta(name = name))]
fn create_dashboard(name: &str) -> u32 {
    1
}

#[audited(event = "widget_create", meta(name = widget))]
fn add_widget(_dashboard: u32, widget: &str) {}

#[audited(event = "user_login", meta(user_name = name, user_email = email))]
fn login(name: &str, email: &str) {}

/// A user, as the audit trail sees it: `changes` records its fields before and after.
#[derive(Clone, audit::AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    name: String,
    email: String,
    #[audit(redact)]
    password_hash: String,
}

#[audited(event = "user_update", entity = user, meta(user_email = &user.email))]
fn rename_user(user: &mut User, name: &str) {
    user.name = name.to_owned();
    user.password_hash = "rotated".into();
}

#[audited(event = "user_invite", meta(user_email = email, account_name = account))]
fn invite(email: &str, account: &str) {}

/// Runs the handlers as Ann (tenant `acme`) and Bob (tenant `globex`); Bob's app
/// removal fails and is recorded with its error.
pub fn scenario() {
    let ann = Context::new()
        .actor(Actor::user("u-1").email("ann@acme.example").name("Ann"))
        .tenant("acme");
    let bob = Context::new()
        .actor(Actor::user("u-2").email("bob@globex.example").name("Bob"))
        .tenant("globex");

    scope(ann, || {
        login("Ann", "ann@acme.example");
        let crm = add_app("CRM", "crm-us").expect("created");
        launch_app(&crm).expect("launched");
        let board = create_dashboard("Sales");
        add_widget(board, "Account Balance");
        invite("carol@acme.example", "Acme");
        let mut ann = User {
            id: 1,
            name: "Ann".into(),
            email: "ann@acme.example".into(),
            password_hash: "x".into(),
        };
        rename_user(&mut ann, "Ann Smith");
    });
    scope(bob, || {
        login("Bob", "bob@globex.example");
        let books = App {
            id: 4,
            uid: "cld-8y7f".into(),
            name: "Books".into(),
            nid: "books".into(),
        };
        // Fails: recorded with outcome "failure" and the error's text.
        let _ = destroy_app(&books, &[]);
    });
}
