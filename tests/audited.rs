//! Every form of `#[audited]`: free functions, methods, generics, `impl Trait`,
//! `?` and early return, `Err` outcomes, `ret`, overrides, `on = ...`.

use audit::testing::capture;
use audit::{Actor, ActorKind, Context, OutcomeKind, Record, audited, scope};
use serde_json::json;

#[derive(Debug, Clone)]
struct App {
    id: i64,
    uid: String,
    name: String,
    nid: String,
}

fn crm() -> App {
    App {
        id: 7,
        uid: "cld-89r7".into(),
        name: "CRM".into(),
        nid: "crm-us".into(),
    }
}

#[derive(Debug)]
struct AppError(&'static str);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "app error: {}", self.0)
    }
}

fn ann() -> Context {
    Context::new()
        .actor(Actor::user("u-1").email("ann@example.com").name("Ann"))
        .tenant("acme")
        .environment("test")
}

fn one(records: Vec<Record>) -> Record {
    assert_eq!(records.len(), 1, "{records:#?}");
    records.into_iter().next().unwrap()
}

#[audited(event = "app_destroy", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid))]
fn destroy_app(app: &App, locked: bool) -> Result<(), AppError> {
    if locked {
        return Err(AppError("locked"));
    }
    Ok(())
}

#[test]
fn success_record_has_every_part() {
    let r = one(capture(|| {
        scope(ann(), || destroy_app(&crm(), false).unwrap())
    }));
    assert_eq!((&*r.event, r.code, &*r.category), ("app_destroy", 2, "app"));
    assert_eq!(r.level, audit::Level::Warn);
    assert_eq!(r.outcome, OutcomeKind::Success);
    assert_eq!(r.error, None);
    assert_eq!(r.description, "CRM deleted");
    assert_eq!(
        r.metadata.to_json(),
        json!({"id": 7, "uid": "cld-89r7", "name": "CRM", "app_nid": "crm-us"})
    );
    let actor = r.context.actor.as_ref().unwrap();
    assert_eq!((actor.id.as_str(), actor.kind), ("u-1", ActorKind::User));
    assert_eq!(r.context.tenant.as_deref(), Some("acme"));
    assert_eq!(r.context.environment.as_deref(), Some("test"));
    let entity = r.entity.as_ref().unwrap();
    assert_eq!((&*entity.kind, entity.type_code), ("app", 1));
    assert_eq!(r.site.function, "destroy_app");
    assert!(r.site.file.ends_with("audited.rs"));
    assert!(r.site.module.ends_with("audited"));
    assert_eq!(r.id.get_version_num(), 7, "ids are UUIDv7");
    // Serialized with the design's field names.
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "id",
        "time",
        "event",
        "code",
        "category",
        "level",
        "outcome",
        "duration_ns",
        "description",
        "actor",
        "tenant",
        "entity",
        "metadata",
        "site",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["outcome"], "success");
    assert_eq!(v["entity"]["type"], "app");
}

#[test]
fn err_is_a_failure_with_the_error_text() {
    let r = one(capture(|| {
        let _ = destroy_app(&crm(), true);
    }));
    assert_eq!(r.outcome, OutcomeKind::Failure);
    assert_eq!(r.error.as_deref(), Some("app error: locked"));
    assert_eq!(r.context.actor, None, "no scope, no actor");
    // Never the success sentence: without a catalog `failure`, the default.
    assert_eq!(r.description, "app_destroy failed: app error: locked");
}

#[audited(event = "dashboard_create", meta(name = name))]
fn create_dashboard(name: &str, allowed: bool) -> Result<(), AppError> {
    if allowed {
        Ok(())
    } else {
        Err(AppError("forbidden"))
    }
}

#[test]
fn a_failure_renders_the_catalog_failure_text() {
    let rs = capture(|| {
        create_dashboard("Sales", true).unwrap();
        let _ = create_dashboard("Sales", false);
    });
    assert_eq!(rs[0].description, "Dashboard 'Sales' created");
    assert_eq!(
        rs[1].description,
        "Could not create dashboard 'Sales': app error: forbidden"
    );
}

#[audited(event = "app_launch", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid), on = "failure")]
fn launch(app: &App, input: &str) -> Result<u16, std::num::ParseIntError> {
    if input.is_empty() {
        return Ok(0);
    }
    let port: u16 = input.parse()?;
    Ok(port)
}

#[test]
fn question_mark_and_early_return_still_emit() {
    let rs = capture(|| {
        assert_eq!(launch(&crm(), ""), Ok(0));
        assert_eq!(launch(&crm(), "8080"), Ok(8080));
        assert!(launch(&crm(), "x").is_err());
    });
    // on = "failure": only the failed call emits.
    let r = one(rs);
    assert_eq!(r.outcome, OutcomeKind::Failure);
    assert_eq!(r.error.as_deref(), Some("invalid digit found in string"));
}

#[audited(event = "app_add", meta(id = ret.id, uid = &ret.uid, name = &ret.name, app_nid = &ret.nid), on = "always")]
fn create_app(name: &str) -> Result<App, AppError> {
    if name.is_empty() {
        return Err(AppError("name required"));
    }
    Ok(App {
        id: 99,
        uid: "cld-new".into(),
        name: name.into(),
        nid: format!("{name}-nid"),
    })
}

#[test]
fn ret_names_the_ok_value() {
    let rs = capture(|| {
        create_app("Books").unwrap();
        let _ = create_app("");
    });
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].metadata["id"], 99);
    assert_eq!(rs[0].metadata["app_nid"], "Books-nid");
    assert_eq!(rs[0].description, "Books added");
    assert_eq!(rs[1].outcome, OutcomeKind::Failure);
    assert_eq!(
        rs[1].metadata["id"],
        serde_json::Value::Null,
        "ret fields are null on failure"
    );
}

struct Board {
    name: String,
    widgets: Vec<String>,
}

impl Board {
    #[audited(event = "widget_create", meta(name = &widget))]
    fn add(&mut self, widget: String) -> usize {
        self.widgets.push(widget);
        self.widgets.len()
    }

    #[audited(event = "dashboard_create", meta(name = &self.name))]
    fn show(&self) -> &str {
        &self.name
    }

    #[audited(event = "dashboard_delete", meta(name = self.name.as_str()))]
    fn delete(self) -> Vec<String> {
        self.widgets
    }
}

#[test]
fn methods_with_every_receiver() {
    let rs = capture(|| {
        let mut b = Board {
            name: "Sales".into(),
            widgets: vec![],
        };
        assert_eq!(b.add("Balance".into()), 1);
        assert_eq!(b.show(), "Sales");
        assert_eq!(b.delete(), vec!["Balance".to_string()]);
    });
    let names: Vec<_> = rs
        .iter()
        .map(|r| (&*r.event, r.description.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("widget_create", "Widget 'Balance' added"),
            ("dashboard_create", "Dashboard 'Sales' created"),
            ("dashboard_delete", "Dashboard 'Sales' deleted"),
        ]
    );
}

trait Named {
    fn label(&self) -> String;
    fn remove(&self) -> Result<(), String>;
}

struct Widget(&'static str);

impl Named for Widget {
    fn label(&self) -> String {
        self.0.to_uppercase()
    }

    #[audited(event = "widget_delete", meta(name = self.label()))]
    fn remove(&self) -> Result<(), String> {
        Err("widget is pinned".into())
    }
}

#[audited(event = "widget_create", meta(name = item.label()))]
fn add_generic<T>(item: &T) -> impl Iterator<Item = u8> + use<T>
where
    T: Named + ?Sized,
{
    let _ = item;
    [1u8, 2].into_iter()
}

#[test]
fn trait_methods_generics_and_impl_trait() {
    let rs = capture(|| {
        assert!(Widget("pie").remove().is_err());
        assert_eq!(add_generic(&Widget("bar")).count(), 2);
        let dynamic: &dyn Named = &Widget("dyn");
        assert_eq!(add_generic(dynamic).sum::<u8>(), 3);
    });
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].metadata["name"], "PIE");
    assert_eq!(rs[0].error.as_deref(), Some("widget is pinned"));
    assert_eq!(rs[1].metadata["name"], "BAR");
    assert_eq!(rs[2].metadata["name"], "DYN");
}

#[audited(event = "user_login", meta(user_name = &name, user_email = email), actor = Actor::service("sso-bridge"), tenant = tenant)]
fn sso_login(name: String, email: &str, tenant: &str) {}

#[test]
fn actor_and_tenant_overrides() {
    let r = one(capture(|| {
        scope(ann(), || {
            sso_login("Bob".into(), "bob@example.com", "globex")
        })
    }));
    let actor = r.context.actor.clone().unwrap();
    assert_eq!(
        (actor.id.as_str(), actor.kind),
        ("sso-bridge", ActorKind::Service)
    );
    assert_eq!(r.context.tenant.as_deref(), Some("globex"));
    assert_eq!(
        r.context.environment.as_deref(),
        Some("test"),
        "the rest of the context is kept"
    );
}

#[audited(event = "organization_create", meta(id = *counter, uid = "org-x", name = "Org"))]
fn bump(counter: &mut i64) -> i64 {
    *counter += 1;
    *counter
}

#[test]
fn meta_sees_arguments_at_entry() {
    let mut c = 10;
    let r = one(capture(|| {
        assert_eq!(bump(&mut c), 11);
    }));
    assert_eq!(r.metadata["id"], 10);
}

#[audited(
    event = "user_logout",
    meta(user_name = "slow", user_email = "s@example.com")
)]
fn slow() {
    std::thread::sleep(std::time::Duration::from_millis(20));
}

#[test]
fn duration_is_recorded() {
    let r = one(capture(slow));
    assert!(r.duration_ns >= 20_000_000, "{}", r.duration_ns);
}

#[test]
fn second_crate_with_its_own_catalog_redacts_and_types_every_field() {
    use audit_support_crate::{SignIn, sign_in};
    let s = SignIn {
        login: "ann".into(),
        ip: None,
        password: "hunter2".into(),
        extra: json!({"client": "web", "auth": {"token": "abc.def"}}),
    };
    let rs = capture(|| {
        assert_eq!(sign_in(&s, 1), Ok(42));
        assert!(sign_in(&s, 9).is_err());
        audit_support_crate::close(5);
    });
    let r = &rs[0];
    assert_eq!(
        r.metadata.to_json(),
        json!({
            "login": "ann", "ip": null, "attempts": 1, "password": "[REDACTED]", "risk": 0.25,
            "mfa": true, "at": "1970-01-01T00:00:00.000000000Z",
            "extra": {"client": "web", "auth": {"token": "[REDACTED]"}},
            "roles": ["admin", "ops"], "scores": [1, -2]
        })
    );
    assert_eq!(r.description, "ann signed in from ");
    assert_eq!(r.name_for(Some("signed-in-{login}")), "signed-in-ann");
    assert_eq!(rs[1].error.as_deref(), Some("too many attempts: 9"));
    let text = serde_json::to_string(&rs).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("abc.def"),
        "secrets never reach a record"
    );
    assert_eq!(rs[2].metadata["reason"], serde_json::Value::Null);
}

#[audited(event = "widget_create", meta(name = id))]
fn create_widget_by_id(id: audit::Uuid) {}

#[test]
fn a_uuid_fits_a_string_field() {
    let id = audit::Uuid::now_v7();
    let r = one(capture(|| create_widget_by_id(id)));
    assert_eq!(r.metadata["name"], id.hyphenated().to_string());
}
