//! What `#[audited]` tells a user whose `meta(...)` value does not fit its field:
//! the Rust types that do (the `Encode` implementations of `audit::kind`, listed in
//! the `audit` crate's `interop` documentation).

use audit_catalog::{FieldType, Scalar};

/// The Rust types that fit one scalar catalog type.
fn scalar(s: Scalar) -> &'static str {
    match s {
        Scalar::String => {
            "&str, String, Cow<str>, uuid::Uuid, rust_decimal::Decimal (feature `rust_decimal`)"
        }
        Scalar::Int => "i8, i16, i32, i64, u8, u16, u32",
        Scalar::Uint => "u8, u16, u32, u64, usize",
        Scalar::Float => "f32, f64",
        Scalar::Bool => "bool",
        Scalar::Timestamp => {
            "SystemTime, audit::Timestamp, chrono::DateTime<Tz> (feature `chrono`), \
             time::OffsetDateTime (feature `time`), jiff::Timestamp (feature `jiff`)"
        }
        Scalar::Json => "serde_json::Value",
    }
}

/// "types that fit `T`: ..." for a field type, by value or by reference.
pub fn note(ty: &FieldType) -> String {
    fn list(ty: &FieldType) -> String {
        match ty {
            FieldType::Scalar(s) => scalar(*s).to_owned(),
            FieldType::Optional(t) => format!("Option<_> of: {}", list(t)),
            FieldType::List(t) => format!("Vec<_> or &[_] of: {}", list(t)),
        }
    }
    format!(
        "types that fit `{ty}` (by value or by reference): {}",
        list(ty)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_name_their_elements() {
        let ty: FieldType = "[int]?".parse().unwrap();
        assert_eq!(
            note(&ty),
            "types that fit `[int]?` (by value or by reference): Option<_> of: \
             Vec<_> or &[_] of: i8, i16, i32, i64, u8, u16, u32"
        );
    }
}
