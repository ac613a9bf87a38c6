//! With no logger installed, emission neither panics nor blocks: it counts.

use audit::audited;

#[audited(
    event = "user_timeout",
    meta(user_name = "Jo", user_email = "jo@example.com")
)]
fn time_out() -> u8 {
    3
}

#[test]
fn events_without_a_logger_are_counted_as_undelivered() {
    let before = audit::dispatch::undelivered();
    for _ in 0..5 {
        assert_eq!(time_out(), 3);
    }
    assert_eq!(audit::dispatch::undelivered() - before, 5);
    assert!(audit::dispatch::global().is_none());
}
