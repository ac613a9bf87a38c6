//! Every validation error: kind, exact message, line and column.

use audit_catalog::{Catalog, ErrorKind};

fn errors(text: &str) -> Vec<(ErrorKind, String, String)> {
    let err = Catalog::parse("audit.toml", text).expect_err("catalog should be rejected");
    err.diagnostics()
        .iter()
        .map(|d| (d.kind(), d.position().to_string(), d.message().to_owned()))
        .collect()
}

fn hints(text: &str) -> Vec<Option<String>> {
    let err = Catalog::parse("audit.toml", text).unwrap_err();
    err.diagnostics()
        .iter()
        .map(|d| d.hint().map(str::to_owned))
        .collect()
}

const HEAD: &str = "[catalog]\nname = \"t\"\n[entities]\napp = 1\n";

fn one(body: &str) -> (ErrorKind, String, String) {
    let mut e = errors(&format!("{HEAD}{body}"));
    assert_eq!(e.len(), 1, "expected one error, got {e:?}");
    e.remove(0)
}

#[test]
fn syntax_error() {
    let e = errors("[catalog]\nname = \"t\n");
    assert_eq!(e[0].0, ErrorKind::Syntax);
    assert_eq!(e[0].1, "2:10");
}

#[test]
fn unknown_keys_suggest_the_nearest() {
    let (k, pos, msg) = one("[events.a_b]\ncode = 1\ndescripton = \"x\"\n");
    assert_eq!((k, pos.as_str()), (ErrorKind::UnknownKey, "7:1"));
    assert_eq!(msg, "unknown key `descripton` in [events.a_b]");
    assert_eq!(
        hints(&format!(
            "{HEAD}[events.a_b]\ncode = 1\ndescripton = \"x\"\n"
        ))[0]
            .as_deref(),
        Some("did you mean `description`?")
    );
    let top = errors("[catalog]\nname = \"t\"\n[event.x]\n");
    assert_eq!(top[0].2, "unknown key `event` in the catalog file");
    assert_eq!(top[0].1, "3:2");
    let field = errors(&format!(
        "{HEAD}[events.a_b]\ncode = 1\nfields = {{ x = {{ typ = \"int\" }} }}\n"
    ));
    assert_eq!(field[0].2, "field `x` of `a_b` has no `type`");
    assert_eq!(field[1].2, "unknown key `typ` in field `x` of `a_b`");
    assert_eq!(field[1].1, "7:18");
}

#[test]
fn duplicate_and_non_positive_codes() {
    let e = errors(&format!(
        "{HEAD}[events.a_b]\ncode = 3\n[events.c_d]\ncode = 3\n[events.e_f]\ncode = 0\n[events.g_h]\ncode = -2\n"
    ));
    assert_eq!(
        e,
        vec![
            (
                ErrorKind::DuplicateEventCode,
                "8:8".into(),
                "event `c_d` reuses code 3 of event `a_b`".into()
            ),
            (
                ErrorKind::NonPositiveCode,
                "10:8".into(),
                "the code of event `e_f` must be a positive integer up to 2147483647, found 0"
                    .into()
            ),
            (
                ErrorKind::NonPositiveCode,
                "12:8".into(),
                "the code of event `g_h` must be a positive integer up to 2147483647, found -2"
                    .into()
            ),
        ]
    );
    let ent = errors("[catalog]\nname = \"t\"\n[entities]\napp = 1\nuser = 1\n");
    assert_eq!(ent[0].0, ErrorKind::DuplicateEntityCode);
    assert_eq!(ent[0].1, "5:1");
    assert_eq!(ent[0].2, "entity `user` reuses code 1 of entity `app`");
}

#[test]
fn codes_may_be_written_in_any_radix() {
    let cat = Catalog::parse(
        "a.toml",
        "[catalog]\nname='x'\n[events.a_b]\ncode = 0x1F\n[events.c_d]\ncode = 1_000\n",
    )
    .unwrap();
    assert_eq!(cat.events[0].code, 31);
    assert_eq!(cat.events[1].code, 1000);
}

#[test]
fn unknown_entity() {
    let (k, pos, msg) = one("[events.a_b]\ncode = 1\nentity = \"ap\"\n");
    assert_eq!((k, pos.as_str()), (ErrorKind::UnknownEntity, "7:10"));
    assert_eq!(
        msg,
        "event `a_b` names entity `ap`, which is not in [entities]"
    );
}

#[test]
fn unknown_field_types() {
    for (ty, col) in [("strng", 16), ("[int", 16), ("int??", 16), ("map", 16)] {
        let (k, pos, msg) = one(&format!(
            "[events.a_b]\ncode = 1\nfields = {{ x = \"{ty}\" }}\n"
        ));
        assert_eq!(k, ErrorKind::UnknownFieldType);
        assert_eq!(pos, format!("7:{col}"));
        assert_eq!(msg, format!("unknown field type `{ty}`"));
    }
    let ok = Catalog::parse(
        "a.toml",
        "[catalog]\nname='x'\n[events.a_b]\ncode = 1\nfields = { a = 'string', b = 'int?', c = '[uint]', d = '[float]?', e = 'bool', f = 'timestamp', g = 'json' }\n",
    )
    .unwrap();
    assert_eq!(ok.events[0].fields.len(), 7);
}

#[test]
fn placeholders_must_name_fields() {
    // The MnoEnterprise seed's own bug: the metadata is `name`, the template says `dashboard_name`.
    let text = format!(
        "{HEAD}[events.dashboard_create]\ncode = 1\ndescription = \"Dashboard '%{{dashboard_name}}' created\"\nfields = {{ name = \"string\" }}\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, ErrorKind::UnknownPlaceholder);
    assert_eq!(e[0].1, "7:27");
    assert_eq!(
        e[0].2,
        "the description of `dashboard_create` uses `dashboard_name`, which is not a field of the event"
    );
    assert_eq!(hints(&text)[0].as_deref(), Some("its fields are: name"));

    let alias = one(
        "[events.app_add]\ncode = 1\nfields = { app_nid = \"string\" }\naliases = { intercom = \"added-app-{app_id}\" }\n",
    );
    assert_eq!(alias.0, ErrorKind::UnknownPlaceholder);
    assert_eq!(alias.1, "8:35");
    assert_eq!(
        alias.2,
        "alias `intercom` of `app_add` uses `app_id`, which is not a field of the event"
    );

    // A failure text may quote `%{error}` besides the fields; anything else is named.
    let failure = one(
        "[events.app_add]\ncode = 1\nfields = { name = \"string\" }\nfailure = \"%{name}: %{eror}\"\n",
    );
    assert_eq!(failure.0, ErrorKind::UnknownPlaceholder);
    assert_eq!(
        failure.2,
        "the failure text of `app_add` uses `eror`, which is not a field of the event (nor `error`)"
    );
    let fine = Catalog::parse(
        "audit.toml",
        &format!("{HEAD}[events.app_add]\ncode = 1\nfields = {{ name = \"string\" }}\nfailure = \"%{{name}}: %{{error}}\"\n"),
    )
    .unwrap();
    assert_eq!(
        fine.event("app_add").unwrap().failure_text(),
        "%{name}: %{error}"
    );

    // Only plain values can be query filters.
    let indexed = one(
        "[events.app_add]\ncode = 1\nfields = { tags = { type = \"[string]\", indexed = true } }\n",
    );
    assert_eq!(indexed.0, ErrorKind::InvalidValue);
    assert_eq!(
        indexed.2,
        "field `tags` of `app_add` is `[string]`: only string, int, uint and bool fields (or optional ones) can be `indexed`"
    );
    let ok = Catalog::parse(
        "audit.toml",
        &format!("{HEAD}[events.app_add]\ncode = 1\nfields = {{ app_id = {{ type = \"uint?\", indexed = true }}, n = \"int\" }}\n"),
    )
    .unwrap();
    let e = ok.event("app_add").unwrap();
    assert!(e.field("app_id").unwrap().indexed && !e.field("n").unwrap().indexed);

    let unclosed = one("[events.a_b]\ncode = 1\ndescription = \"%{x\"\n");
    assert_eq!(unclosed.0, ErrorKind::InvalidValue);
    assert_eq!(
        unclosed.2,
        "the description of `a_b`: unclosed placeholder: add `}`"
    );
}

#[test]
fn changes_need_an_entity() {
    let (k, pos, msg) = one("[events.user_update]\ncode = 1\nchanges = true\n");
    assert_eq!((k, pos.as_str()), (ErrorKind::ChangesWithoutEntity, "7:11"));
    assert_eq!(
        msg,
        "event `user_update` has `changes = true` but no `entity`"
    );
}

#[test]
fn reverts_and_summaries_need_an_entity() {
    let e = errors(&format!(
        "{HEAD}[events.user_revert]\ncode = 1\nreverts = true\nsummary = true\n[events.ok_one]\ncode = 2\nreverts = false\n"
    ));
    let got: Vec<_> = e
        .iter()
        .map(|x| (x.0, x.1.as_str(), x.2.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ErrorKind::ChangesWithoutEntity,
                "7:11",
                "event `user_revert` has `reverts = true` but no `entity`"
            ),
            (
                ErrorKind::ChangesWithoutEntity,
                "8:11",
                "event `user_revert` has `summary = true` but no `entity`"
            ),
        ]
    );
    let h = hints(&format!(
        "{HEAD}[events.user_revert]\ncode = 1\nreverts = true\n"
    ));
    assert_eq!(
        h[0].as_deref(),
        Some("a revert undoes a change of an entity: add `entity = \"...\"`")
    );
    let cat = Catalog::parse(
        "audit.toml",
        &format!("{HEAD}[events.user_revert]\ncode = 1\nentity = \"app\"\nreverts = true\nsummary = true\n"),
    )
    .unwrap();
    let e = cat.event("user_revert").unwrap();
    assert!(e.reverts && e.summary);
}

#[test]
fn names_are_snake_case() {
    let e = errors(&format!(
        "{HEAD}[events.AppAdd]\ncode = 1\nfields = {{ userEmail = \"string\", self = \"int\", id = \"int\" }}\ncategory = \"Apps\"\n"
    ));
    let msgs: Vec<_> = e.iter().map(|x| (x.0, x.2.as_str())).collect();
    assert_eq!(
        msgs,
        vec![
            (
                ErrorKind::InvalidName,
                "event name `AppAdd` is not a snake_case identifier"
            ),
            (
                ErrorKind::InvalidName,
                "field name `userEmail` is not a snake_case identifier"
            ),
            (
                ErrorKind::InvalidName,
                "field name `self` is reserved by Rust and cannot be written in `meta(...)`"
            ),
            (
                ErrorKind::InvalidName,
                "category `Apps` is not a snake_case identifier"
            ),
        ]
    );
    // Metadata is namespaced under `metadata`: record keys are fine as field names.
    Catalog::parse("a.toml", "[catalog]\nname='x'\n[events.a_b]\ncode = 1\nfields = { id = 'int', time = 'timestamp', actor = 'string' }\n").unwrap();
}

#[test]
fn wrong_types_and_values() {
    let e = errors(&format!(
        "{HEAD}[events.a_b]\ncode = \"1\"\nlevel = \"loud\"\nchanges = 1\n[events.c_d]\ncode = 2\ndurability = \"later\"\n"
    ));
    let msgs: Vec<_> = e
        .iter()
        .map(|x| (x.0, x.1.as_str(), x.2.as_str()))
        .collect();
    assert_eq!(
        msgs,
        vec![
            (
                ErrorKind::WrongType,
                "6:8",
                "the code of event `a_b` must be a positive integer, found a string"
            ),
            (ErrorKind::InvalidValue, "7:9", "unknown level `loud`"),
            (
                ErrorKind::WrongType,
                "8:11",
                "`changes` must be `true` or `false`, found an integer"
            ),
            (
                ErrorKind::InvalidValue,
                "11:14",
                "unknown durability `later`"
            ),
        ]
    );
}

#[test]
fn missing_keys() {
    let e = errors("[entities]\n[events.a_b]\nlevel = 'info'\n");
    let msgs: Vec<_> = e.iter().map(|x| (x.0, x.2.as_str())).collect();
    assert_eq!(
        msgs,
        vec![
            (ErrorKind::MissingKey, "missing [catalog] section"),
            (ErrorKind::MissingKey, "event `a_b` has no `code`"),
        ]
    );
}

#[test]
fn redact_keys_must_be_fields() {
    let (k, _, msg) =
        one("[events.a_b]\ncode = 1\nfields = { token = 'string' }\nredact = ['tokn']\n");
    assert_eq!(k, ErrorKind::UnknownRedactKey);
    assert_eq!(msg, "`redact` names `tokn`, which is no field of `a_b`");
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/five_mistakes.toml"
    ))
    .unwrap();
    let e = errors(&text);
    let kinds: Vec<_> = e.iter().map(|x| (x.0, x.1.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (ErrorKind::UnknownEntity, "10:10"),
            (ErrorKind::UnknownFieldType, "11:31"),
            (ErrorKind::DuplicateEventCode, "15:8"),
            (ErrorKind::UnknownPlaceholder, "22:27"),
            (ErrorKind::UnknownKey, "24:1"),
        ]
    );
}

#[test]
fn defaults_apply() {
    let cat = Catalog::parse(
        "a.toml",
        "[catalog]\nname='x'\n[defaults]\nlevel='warn'\ndurability='sync'\nredact=['password']\n[events.user_login]\ncode=1\nfields={ password='string', name='string' }\n[events.b_c]\ncode=2\nlevel='error'\ndurability='async'\n",
    )
    .unwrap();
    let e = &cat.events[0];
    assert_eq!(e.category, "user");
    assert_eq!(e.level, audit_catalog::Level::Warn);
    assert_eq!(e.durability, audit_catalog::Durability::Sync);
    assert!(e.field("password").unwrap().redact);
    assert!(!e.field("name").unwrap().redact);
    assert_eq!(cat.events[1].level, audit_catalog::Level::Error);
    assert_eq!(cat.events[1].durability, audit_catalog::Durability::Async);
}

#[test]
fn rendered_errors_show_the_line_and_a_caret() {
    let err = Catalog::parse(
        "cat/audit.toml",
        &format!("{HEAD}[events.a_b]\ncode = 1\nentity = \"ap\"\n"),
    )
    .unwrap_err();
    assert_eq!(
        err.diagnostics()[0].render(),
        "error: event `a_b` names entity `ap`, which is not in [entities]\n --> cat/audit.toml:7:10\n  |\n7 | entity = \"ap\"\n  |          ^^^^\n  = help: did you mean `app`?\n"
    );
}
