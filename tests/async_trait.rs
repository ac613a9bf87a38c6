//! `#[audited]` inside an `#[async_trait]` impl: the event is emitted when the boxed
//! future completes, with its outcome and duration, not when it is created.

use std::time::Duration;

use async_trait::async_trait;
use audit::testing::capture_async;
use audit::{OutcomeKind, audited};

#[async_trait]
trait Dashboards {
    async fn create(&self, name: &str) -> Result<u32, String>;
}

struct Store {
    owner: String,
}

#[async_trait]
impl Dashboards for Store {
    #[audited(event = "dashboard_create", meta(name = name))]
    async fn create(&self, name: &str) -> Result<u32, String> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if name == self.owner {
            return Err(format!("{name} is reserved"));
        }
        let n: u32 = name.len().try_into().map_err(|_| "too long".to_string())?;
        Ok(n)
    }
}

#[tokio::test]
async fn emitted_when_the_boxed_future_completes() {
    let store = Store {
        owner: "root".into(),
    };
    let (results, records) = capture_async(async {
        let fut = store.create("Sales");
        (fut.await, store.create("root").await)
    })
    .await;
    assert_eq!(results, (Ok(5), Err("root is reserved".to_string())));
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].outcome, OutcomeKind::Success);
    assert_eq!(records[0].description, "Dashboard 'Sales' created");
    assert!(
        records[0].duration_ns >= 10_000_000,
        "{}",
        records[0].duration_ns
    );
    assert_eq!(records[1].error.as_deref(), Some("root is reserved"));
}
