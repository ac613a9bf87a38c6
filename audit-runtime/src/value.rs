//! Metadata values and the typed conversions from Rust expressions into them.
//!
//! Each catalog field type has a marker in [`kind`]; an expression fits a field when
//! its type implements [`Encode`] for that marker. `#[audited]` uses these traits so
//! that a mismatch is a compile error naming the event, the field and the catalog line.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::time::Timestamp;

/// A metadata value, as captured on the caller's thread (no JSON is built there).
///
/// ```
/// use audit_runtime::Value;
/// assert_eq!(serde_json::to_value(Value::List(vec![Value::Int(1), Value::Null])).unwrap(), serde_json::json!([1, null]));
/// // Floats JSON cannot hold as numbers are kept as text, never turned into null.
/// assert_eq!(Value::Float(f64::NAN).into_json(), "NaN");
/// assert_eq!(Value::Float(f64::NEG_INFINITY).to_json(), "-Infinity");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (an absent optional field).
    Null,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i64),
    /// `uint`.
    Uint(u64),
    /// `float`. NaN and the infinities are written as the strings `"NaN"`,
    /// `"Infinity"` and `"-Infinity"`.
    Float(f64),
    /// `string`.
    Str(Cow<'static, str>),
    /// `timestamp`.
    Timestamp(Timestamp),
    /// `json` (boxed: it is rare, and inline it would make every value 72 bytes).
    Json(Box<serde_json::Value>),
    /// `[T]`.
    List(Vec<Value>),
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The value as JSON, moving its strings.
    pub fn into_json(self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(i) => J::from(i),
            Value::Uint(u) => J::from(u),
            Value::Float(f) => serde_json::Number::from_f64(f)
                .map_or_else(|| J::String(non_finite(f).into()), J::Number),
            Value::Str(s) => J::String(s.into_owned()),
            Value::Timestamp(t) => J::String(t.to_string()),
            Value::Json(j) => *j,
            Value::List(l) => J::Array(l.into_iter().map(Value::into_json).collect()),
        }
    }

    /// The text a description template shows for this value.
    pub fn display(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Str(s) => s.to_string(),
            other => other.to_json().to_string(),
        }
    }
}

/// The text of a float JSON cannot hold as a number (the names JavaScript and
/// Python's `json` module use): no value is lost, and none becomes `null`.
fn non_finite(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Uint(u) => s.serialize_u64(*u),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(f) => s.serialize_str(non_finite(*f)),
            Value::Str(t) => s.serialize_str(t),
            Value::Timestamp(t) => t.serialize(s),
            Value::Json(j) => j.serialize(s),
            Value::List(l) => l.serialize(s),
        }
    }
}

/// Markers for the catalog's field types.
pub mod kind {
    use std::marker::PhantomData;

    /// `string`
    pub struct Str;
    /// `int`
    pub struct Int;
    /// `uint`
    pub struct Uint;
    /// `float`
    pub struct Float;
    /// `bool`
    pub struct Bool;
    /// `timestamp`
    pub struct Timestamp;
    /// `json`
    pub struct Json;
    /// `T?`
    pub struct Opt<K>(PhantomData<K>);
    /// `[T]`
    pub struct List<K>(PhantomData<K>);
}

/// Converts a Rust value into the [`Value`] of catalog field type `K`.
///
/// Implemented for the natural Rust types of each kind, by value and by reference:
/// `string` takes `&str`, `String`, `Cow<str>`; `int` takes `i8`..`i64`, `u8`..`u32`;
/// `uint` takes `u8`..`u64`, `usize`; `float` takes `f32`, `f64`; `bool` takes `bool`;
/// `timestamp` takes `SystemTime` and [`Timestamp`]; `json` takes `serde_json::Value`.
/// `T?` takes `Option<_>` of any of those, `[T]` takes `Vec<_>` and slices.
///
/// ```
/// use audit_runtime::{Encode, Value, kind};
/// assert_eq!(Encode::<kind::Int>::encode(&7u32), Value::Int(7));
/// assert_eq!(Encode::<kind::Opt<kind::Str>>::encode(None::<&str>), Value::Null);
/// assert_eq!(Encode::<kind::List<kind::Bool>>::encode(vec![true]), Value::List(vec![Value::Bool(true)]));
/// ```
pub trait Encode<K> {
    /// The value.
    fn encode(self) -> Value;
}

macro_rules! encode_copy {
    ($kind:ident => $variant:ident as $target:ty: $($t:ty),*) => {$(
        impl Encode<kind::$kind> for $t {
            #[inline]
            fn encode(self) -> Value { Value::$variant(self as $target) }
        }
        impl Encode<kind::$kind> for &$t {
            #[inline]
            fn encode(self) -> Value { Value::$variant(*self as $target) }
        }
    )*};
}

encode_copy!(Int => Int as i64: i8, i16, i32, i64, isize, u8, u16, u32);
encode_copy!(Uint => Uint as u64: u8, u16, u32, u64, usize);
encode_copy!(Float => Float as f64: f32, f64);
encode_copy!(Bool => Bool as bool: bool);

impl Encode<kind::Str> for &str {
    #[inline]
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.to_owned()))
    }
}
impl Encode<kind::Str> for String {
    #[inline]
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self))
    }
}
impl Encode<kind::Str> for &String {
    #[inline]
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.clone()))
    }
}
impl Encode<kind::Str> for &&str {
    #[inline]
    fn encode(self) -> Value {
        Value::Str(Cow::Owned((*self).to_owned()))
    }
}
impl Encode<kind::Str> for Cow<'_, str> {
    #[inline]
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.into_owned()))
    }
}
impl Encode<kind::Str> for &Cow<'_, str> {
    #[inline]
    fn encode(self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

impl Encode<kind::Timestamp> for SystemTime {
    fn encode(self) -> Value {
        Value::Timestamp(Timestamp::from(self))
    }
}
impl Encode<kind::Timestamp> for &SystemTime {
    fn encode(self) -> Value {
        Value::Timestamp(Timestamp::from(*self))
    }
}
impl Encode<kind::Timestamp> for Timestamp {
    fn encode(self) -> Value {
        Value::Timestamp(self)
    }
}
impl Encode<kind::Timestamp> for &Timestamp {
    fn encode(self) -> Value {
        Value::Timestamp(*self)
    }
}

impl Encode<kind::Json> for serde_json::Value {
    fn encode(self) -> Value {
        Value::Json(Box::new(self))
    }
}
impl Encode<kind::Json> for &serde_json::Value {
    fn encode(self) -> Value {
        Value::Json(Box::new(self.clone()))
    }
}

impl<K, T: Encode<K>> Encode<kind::Opt<K>> for Option<T> {
    fn encode(self) -> Value {
        self.map_or(Value::Null, T::encode)
    }
}
impl<'a, K, T> Encode<kind::Opt<K>> for &'a Option<T>
where
    &'a T: Encode<K>,
{
    fn encode(self) -> Value {
        self.as_ref().map_or(Value::Null, <&T>::encode)
    }
}

impl<K, T: Encode<K>> Encode<kind::List<K>> for Vec<T> {
    fn encode(self) -> Value {
        Value::List(self.into_iter().map(T::encode).collect())
    }
}
impl<'a, K, T> Encode<kind::List<K>> for &'a Vec<T>
where
    &'a T: Encode<K>,
{
    fn encode(self) -> Value {
        Value::List(self.iter().map(<&T>::encode).collect())
    }
}
impl<'a, K, T> Encode<kind::List<K>> for &'a [T]
where
    &'a T: Encode<K>,
{
    fn encode(self) -> Value {
        Value::List(self.iter().map(<&T>::encode).collect())
    }
}
