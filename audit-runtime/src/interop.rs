//! The types real applications hold, fitted to the catalog's field types and to
//! [`crate::Timestamp`]: `uuid::Uuid` (always: the records' ids are UUIDs) and, behind
//! features named after their crates, `chrono`, `time`, `jiff` and `rust_decimal`.
//!
//! | catalog type | Rust types that fit (by value or by reference) |
//! |---|---|
//! | `string` | `&str`, `String`, `Cow<str>`, `uuid::Uuid`, `rust_decimal::Decimal` (exact text) |
//! | `int` | `i8` `i16` `i32` `i64`, `u8` `u16` `u32` |
//! | `uint` | `u8` `u16` `u32` `u64` `usize` |
//! | `float` | `f32` `f64` |
//! | `bool` | `bool` |
//! | `timestamp` | `SystemTime`, [`crate::Timestamp`], `chrono::DateTime<Tz>`, `time::OffsetDateTime`, `jiff::Timestamp` |
//! | `json` | `serde_json::Value` |
//! | `T?` | `Option<X>` where `X` fits `T` |
//! | `[T]` | `Vec<X>`, `&[X]` where `X` fits `T` |
//!
//! A `rust_decimal::Decimal` fits `string`, not `float`: an amount is kept exactly
//! as written (`"19.99"`), never rounded through a binary float.
//!
//! Timestamps outside 1677–2262 (the range of `i64` nanoseconds) saturate at the
//! nearest end.
//!
//! ```
//! use audit_runtime::{Encode, Value, kind};
//! let id = uuid::Uuid::nil();
//! assert_eq!(
//!     Encode::<kind::Str>::encode(&id),
//!     Value::Str("00000000-0000-0000-0000-000000000000".into())
//! );
//! ```

use std::borrow::Cow;

#[cfg(any(feature = "chrono", feature = "time", feature = "jiff"))]
use crate::time::Timestamp;
use crate::value::{Encode, Value, kind};

impl Encode<kind::Str> for uuid::Uuid {
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.hyphenated().to_string()))
    }
}

impl Encode<kind::Str> for &uuid::Uuid {
    fn encode(self) -> Value {
        (*self).encode()
    }
}

/// Timestamps of another crate: `From` both ways and `Encode<kind::Timestamp>`.
macro_rules! timestamp_interop {
    ($feature:literal, $ty:ty, $to_nanos:expr, $from_nanos:expr) => {
        #[cfg(feature = $feature)]
        impl From<$ty> for Timestamp {
            fn from(t: $ty) -> Timestamp {
                Timestamp::from_nanos_i128($to_nanos(&t))
            }
        }

        #[cfg(feature = $feature)]
        impl From<Timestamp> for $ty {
            fn from(t: Timestamp) -> $ty {
                $from_nanos(t.as_nanos())
            }
        }

        #[cfg(feature = $feature)]
        impl Encode<kind::Timestamp> for $ty {
            fn encode(self) -> Value {
                Value::Timestamp(Timestamp::from(self))
            }
        }

        #[cfg(feature = $feature)]
        impl Encode<kind::Timestamp> for &$ty {
            fn encode(self) -> Value {
                Value::Timestamp(Timestamp::from(*self))
            }
        }
    };
}

timestamp_interop!(
    "time",
    time::OffsetDateTime,
    |t: &time::OffsetDateTime| t.unix_timestamp_nanos(),
    |ns: i64| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .expect("every i64 of nanoseconds is a valid OffsetDateTime")
);

timestamp_interop!(
    "jiff",
    jiff::Timestamp,
    |t: &jiff::Timestamp| t.as_nanosecond(),
    |ns: i64| jiff::Timestamp::from_nanosecond(i128::from(ns))
        .expect("every i64 of nanoseconds is a valid jiff::Timestamp")
);

#[cfg(feature = "chrono")]
mod chrono_interop {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn nanos<Tz: TimeZone>(t: &DateTime<Tz>) -> i128 {
        i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
    }

    impl<Tz: TimeZone> From<DateTime<Tz>> for Timestamp {
        fn from(t: DateTime<Tz>) -> Timestamp {
            Timestamp::from_nanos_i128(nanos(&t))
        }
    }

    impl From<Timestamp> for DateTime<Utc> {
        fn from(t: Timestamp) -> DateTime<Utc> {
            DateTime::from_timestamp_nanos(t.as_nanos())
        }
    }

    impl<Tz: TimeZone> Encode<kind::Timestamp> for DateTime<Tz> {
        fn encode(self) -> Value {
            Value::Timestamp(Timestamp::from_nanos_i128(nanos(&self)))
        }
    }

    impl<Tz: TimeZone> Encode<kind::Timestamp> for &DateTime<Tz> {
        fn encode(self) -> Value {
            Value::Timestamp(Timestamp::from_nanos_i128(nanos(self)))
        }
    }
}

#[cfg(feature = "rust_decimal")]
impl Encode<kind::Str> for rust_decimal::Decimal {
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

#[cfg(feature = "rust_decimal")]
impl Encode<kind::Str> for &rust_decimal::Decimal {
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

#[cfg(test)]
// Some values are encoded by reference on purpose: both impls are under test.
#[allow(clippy::needless_borrows_for_generic_args)]
mod tests {
    use super::*;

    #[test]
    fn uuid_fits_string() {
        let id = uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
        assert_eq!(
            Encode::<kind::Str>::encode(id),
            Value::Str("01930000-0000-7000-8000-000000000001".into())
        );
    }

    #[cfg(feature = "chrono")]
    #[test]
    fn chrono_round_trips_and_fits_timestamp() {
        use chrono::{DateTime, FixedOffset, Utc};
        let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
        let c: DateTime<Utc> = t.into();
        assert_eq!(Timestamp::from(c), t);
        let paris: DateTime<FixedOffset> = c.with_timezone(&FixedOffset::east_opt(3600).unwrap());
        assert_eq!(
            Encode::<kind::Timestamp>::encode(&paris),
            Value::Timestamp(t)
        );
        let old = DateTime::parse_from_rfc3339("1901-01-01T00:00:00.5Z").unwrap();
        assert_eq!(
            Timestamp::from(old).to_string(),
            "1901-01-01T00:00:00.500000000Z"
        );
        let far = DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z").unwrap();
        assert_eq!(
            Timestamp::from(far),
            Timestamp::from_nanos(i64::MAX),
            "saturates"
        );
    }

    #[cfg(feature = "time")]
    #[test]
    fn time_round_trips_and_fits_timestamp() {
        let t = Timestamp::from_nanos(-86_400_000_000_001);
        let o: time::OffsetDateTime = t.into();
        assert_eq!(Timestamp::from(o), t);
        assert_eq!(Encode::<kind::Timestamp>::encode(o), Value::Timestamp(t));
    }

    #[cfg(feature = "jiff")]
    #[test]
    fn jiff_round_trips_and_fits_timestamp() {
        let t = Timestamp::from_nanos(1_700_000_000_000_000_001);
        let j: jiff::Timestamp = t.into();
        assert_eq!(Timestamp::from(j), t);
        assert_eq!(Encode::<kind::Timestamp>::encode(&j), Value::Timestamp(t));
    }

    #[cfg(feature = "rust_decimal")]
    #[test]
    fn decimal_fits_string_exactly() {
        let d: rust_decimal::Decimal = "19.990".parse().unwrap();
        assert_eq!(Encode::<kind::Str>::encode(&d), Value::Str("19.990".into()));
    }
}
