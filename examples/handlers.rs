//! Annotated handlers on the MnoEnterprise catalog (`examples/catalogs/mnoe.toml`):
//! app, dashboard, user and widget events, as two users of two tenants, one call
//! failing. Events go through the delivery pipeline to the console, a JSON Lines
//! file and an Intercom-style listener that publishes the catalog's aliases; then the
//! coverage report lists the declared events this program never emits.
//!
//! ```sh
//! cargo run --example handlers
//! ```

use std::fmt;

use audit::sinks::{Console, JsonLines, Listener, SinkOptions};
use audit::{Actor, Auditor, Context, Record, audited, scope};

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

fn main() {
    let out = std::env::temp_dir().join("audit-handlers-example");
    let _ = std::fs::remove_dir_all(&out);
    let intercom = Listener::new("intercom", |r: &Record, name: &str| {
        println!("  intercom <- {name} ({})", r.description);
    });
    let guard = Auditor::builder()
        .sink(Console::human())
        .sink(JsonLines::open(out.join("audit.jsonl")).expect("log file opens"))
        // The MnoEnterprise Intercom listener: renamed events, app and dashboard ones only.
        .sink_with(
            intercom,
            SinkOptions::new()
                .alias("intercom")
                .categories(["app", "dashboard", "widget", "user"]),
        )
        .spool_dir(out.join("spool"))
        .install()
        .expect("first logger of this process");

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

    audit::flush();
    let metrics = guard.auditor().metrics();
    for s in &metrics.sinks {
        eprintln!("sink {:<22} delivered {}", s.name, s.delivered);
    }
    eprintln!(
        "JSON Lines written to {}",
        out.join("audit.jsonl").display()
    );
    eprintln!("\n{}", audit::registry::coverage());
}
