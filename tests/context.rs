//! The ambient context: right across `.await` and thread hops, never leaking between
//! tasks, restored after a panic; and `async fn` handlers.

use std::time::Duration;

use audit::testing::{capture, capture_async};
use audit::{Actor, AuditScopeExt, Context, OutcomeKind, audited, current, scope};

fn as_user(id: &str, tenant: &str) -> Context {
    Context::new().actor(Actor::user(id)).tenant(tenant)
}

#[audited(event = "dashboard_create", meta(name = name))]
async fn create_dashboard(name: &str, fail: bool) -> Result<u32, String> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    tokio::task::yield_now().await;
    if fail {
        return Err(format!("dashboard {name} exists"));
    }
    Ok(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_tasks_each_see_their_own_actor() {
    let mut handles = Vec::new();
    for i in 0..8 {
        let user = format!("u{i}");
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        let fut = async move {
            let mut seen = Vec::new();
            for _ in 0..20 {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_micros(100)).await;
                let c = current().expect("context inside the scope");
                seen.push((c.actor.clone().unwrap().id, c.tenant.clone().unwrap()));
            }
            let (_, records) = capture_async(create_dashboard("Sales", i == 3)).await;
            (seen, records)
        };
        handles.push(tokio::spawn(fut.audit_scope(as_user(&user, tenant))));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let (seen, records) = h.await.unwrap();
        let expected_tenant = if i % 2 == 0 { "acme" } else { "globex" };
        assert!(
            seen.iter()
                .all(|(u, t)| u == &format!("u{i}") && t == expected_tenant),
            "task {i} saw {seen:?}"
        );
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.context.actor.as_ref().unwrap().id, format!("u{i}"));
        assert_eq!(r.context.tenant.as_deref(), Some(expected_tenant));
        assert_eq!(
            r.outcome,
            if i == 3 {
                OutcomeKind::Failure
            } else {
                OutcomeKind::Success
            }
        );
        assert!(
            r.duration_ns >= 5_000_000,
            "emitted when the future completes"
        );
    }
    assert!(
        current().is_none(),
        "nothing leaks into the test's own task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_does_not_leak_into_the_next_request() {
    async fn handler() -> Option<String> {
        tokio::task::yield_now().await;
        current().and_then(|c| c.actor.clone()).map(|a| a.id)
    }
    assert_eq!(
        handler()
            .audit_scope(as_user("first", "t"))
            .await
            .as_deref(),
        Some("first")
    );
    assert_eq!(handler().await, None);
    let carried = scope(as_user("parent", "t"), || {
        tokio::spawn(handler().in_current_audit_scope())
    });
    assert_eq!(carried.await.unwrap().as_deref(), Some("parent"));
}

#[test]
fn nested_scopes_and_panics_restore_the_outer_context() {
    scope(as_user("outer", "t"), || {
        let result = std::panic::catch_unwind(|| {
            scope(as_user("inner", "t"), || {
                assert_eq!(current().unwrap().actor.clone().unwrap().id, "inner");
                panic!("handler failed");
            })
        });
        assert!(result.is_err());
        assert_eq!(current().unwrap().actor.clone().unwrap().id, "outer");
    });
    assert!(current().is_none());
}

#[test]
fn parallel_captures_do_not_see_each_others_events() {
    #[audited(event = "widget_create", meta(name = name))]
    fn add(name: &str) {}

    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let rs = capture(|| {
                    for i in 0..50 {
                        add(&format!("t{t}-{i}"));
                    }
                });
                assert_eq!(rs.len(), 50);
                assert!(rs.iter().all(|r| {
                    r.metadata["name"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("t{t}-"))
                }));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
