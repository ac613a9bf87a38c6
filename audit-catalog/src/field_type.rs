//! Field types: `string int uint float bool timestamp json`, `T?`, `[T]`.

use std::fmt;
use std::str::FromStr;

/// A scalar field type.
///
/// ```
/// use audit_catalog::Scalar;
/// assert_eq!("uint".parse::<Scalar>(), Ok(Scalar::Uint));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// UTF-8 text.
    String,
    /// Signed 64-bit integer.
    Int,
    /// Unsigned 64-bit integer.
    Uint,
    /// 64-bit float.
    Float,
    /// `true` / `false`.
    Bool,
    /// A point in time (UTC, nanoseconds).
    Timestamp,
    /// Any JSON value.
    Json,
}

impl Scalar {
    /// Every scalar, in the order the docs list them.
    pub const ALL: [Scalar; 7] = [
        Scalar::String,
        Scalar::Int,
        Scalar::Uint,
        Scalar::Float,
        Scalar::Bool,
        Scalar::Timestamp,
        Scalar::Json,
    ];

    /// The name used in `audit.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Scalar::String => "string",
            Scalar::Int => "int",
            Scalar::Uint => "uint",
            Scalar::Float => "float",
            Scalar::Bool => "bool",
            Scalar::Timestamp => "timestamp",
            Scalar::Json => "json",
        }
    }
}

impl FromStr for Scalar {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Scalar::ALL.into_iter().find(|t| t.name() == s).ok_or(())
    }
}

/// The declared type of a metadata field.
///
/// ```
/// use audit_catalog::{FieldType, Scalar};
/// let t: FieldType = "[string]?".parse().unwrap();
/// assert_eq!(t, FieldType::Optional(Box::new(FieldType::List(Box::new(FieldType::Scalar(Scalar::String))))));
/// assert!(!t.is_required());
/// assert_eq!(t.to_string(), "[string]?");
/// assert!("strng".parse::<FieldType>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A plain value.
    Scalar(Scalar),
    /// `T?`: may be absent (null).
    Optional(Box<FieldType>),
    /// `[T]`: a list.
    List(Box<FieldType>),
}

impl FieldType {
    /// Whether a query can filter on it (`indexed = true`): a string, int, uint or
    /// bool, or an optional one.
    ///
    /// ```
    /// use audit_catalog::FieldType;
    /// assert!("uint?".parse::<FieldType>().unwrap().is_indexable());
    /// assert!(!"[string]".parse::<FieldType>().unwrap().is_indexable());
    /// ```
    pub fn is_indexable(&self) -> bool {
        use Scalar::*;
        match self {
            FieldType::Scalar(s) => matches!(s, String | Int | Uint | Bool),
            FieldType::Optional(t) => t.is_indexable(),
            FieldType::List(_) => false,
        }
    }

    /// Whether a value must be given (everything but `T?`).
    pub fn is_required(&self) -> bool {
        !matches!(self, FieldType::Optional(_))
    }

    /// The scalar at the bottom of the type.
    pub fn scalar(&self) -> Scalar {
        match self {
            FieldType::Scalar(s) => *s,
            FieldType::Optional(t) | FieldType::List(t) => t.scalar(),
        }
    }

    /// An example JSON value of this type, for generated docs.
    pub fn example(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            FieldType::Scalar(s) => match s {
                Scalar::String => json!("text"),
                Scalar::Int => json!(-7),
                Scalar::Uint => json!(7),
                Scalar::Float => json!(1.5),
                Scalar::Bool => json!(true),
                Scalar::Timestamp => json!("2026-11-23T09:30:00Z"),
                Scalar::Json => json!({}),
            },
            FieldType::Optional(t) => t.example(),
            FieldType::List(t) => json!([t.example()]),
        }
    }
}

/// Why a field type did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTypeError {
    /// The offending part of the type (the whole text, or the part inside `[]`/`?`).
    pub unknown: String,
}

impl FromStr for FieldType {
    type Err = FieldTypeError;
    fn from_str(s: &str) -> Result<Self, FieldTypeError> {
        let t = s.trim();
        let err = || FieldTypeError {
            unknown: s.to_owned(),
        };
        if let Some(inner) = t.strip_suffix('?') {
            let inner: FieldType = inner.parse()?;
            if !inner.is_required() {
                return Err(err());
            }
            return Ok(FieldType::Optional(Box::new(inner)));
        }
        if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return Ok(FieldType::List(Box::new(inner.parse()?)));
        }
        t.parse::<Scalar>()
            .map(FieldType::Scalar)
            .map_err(|()| err())
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Scalar(s) => f.write_str(s.name()),
            FieldType::Optional(t) => write!(f, "{t}?"),
            FieldType::List(t) => write!(f, "[{t}]"),
        }
    }
}
