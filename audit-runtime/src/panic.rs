//! Panics in code the pipeline does not own (a sink, a listener, a handler) are caught
//! where they happen and turned into errors that say what panicked.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// Runs `f`, turning a panic into `Err(its message)`. The callers own the state `f`
/// touches and treat it as suspect after a panic (a sink is retried from scratch, a
/// batch is dead-lettered), hence the `AssertUnwindSafe`.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| message(&*p))
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_of_str_and_string_payloads() {
        assert_eq!(
            super::catch(|| panic!("plain")),
            Err::<(), _>("plain".into())
        );
        assert_eq!(
            super::catch(|| panic!("n = {}", 4)),
            Err::<(), _>("n = 4".into())
        );
        assert_eq!(
            super::catch(|| std::panic::panic_any(7u8)),
            Err::<(), _>("a panic with a non-text payload".into())
        );
        assert_eq!(super::catch(|| 5), Ok(5));
    }
}
