//! The trace a record belongs to: the W3C trace and span ids of the OpenTelemetry
//! context current when the call ended (feature `opentelemetry`), so that an audit
//! record links to the trace of the request that made it.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// W3C trace context ids, serialized as lowercase hex (`trace_id` 32 digits,
/// `span_id` 16), as in a `traceparent` header.
///
/// ```
/// use audit_runtime::record::Trace;
/// let t = Trace {
///     trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736_u128.to_be_bytes(),
///     span_id: 0x00f067aa0ba902b7_u64.to_be_bytes(),
/// };
/// let json = serde_json::to_string(&t).unwrap();
/// assert_eq!(json, r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}"#);
/// assert_eq!(serde_json::from_str::<Trace>(&json).unwrap(), t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trace {
    /// The trace id (big-endian bytes, as on the wire).
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
}

impl Trace {
    /// The trace id as 32 hex digits.
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", u128::from_be_bytes(self.trace_id))
    }

    /// The span id as 16 hex digits.
    pub fn span_hex(&self) -> String {
        format!("{:016x}", u64::from_be_bytes(self.span_id))
    }
}

#[derive(Serialize, Deserialize)]
struct Hex {
    trace_id: String,
    span_id: String,
}

impl Serialize for Trace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Hex {
            trace_id: self.trace_hex(),
            span_id: self.span_hex(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Trace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let h = Hex::deserialize(d)?;
        let parse = |s: &str, digits: usize| {
            (s.len() == digits)
                .then(|| u128::from_str_radix(s, 16).ok())
                .flatten()
                .ok_or_else(|| D::Error::custom(format!("`{s}` is not {digits} hex digits")))
        };
        Ok(Trace {
            trace_id: parse(&h.trace_id, 32)?.to_be_bytes(),
            span_id: (parse(&h.span_id, 16)? as u64).to_be_bytes(),
        })
    }
}

/// The OpenTelemetry context current on this thread, if it holds a valid span
/// (boxed: events without one stay small).
#[cfg(feature = "opentelemetry")]
pub(crate) fn current() -> Option<Box<Trace>> {
    use opentelemetry::trace::TraceContextExt;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        Box::new(Trace {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
        })
    })
}

/// Without the `opentelemetry` feature no record has a trace.
#[cfg(not(feature = "opentelemetry"))]
#[inline(always)]
pub(crate) fn current() -> Option<Box<Trace>> {
    None
}

#[cfg(all(test, feature = "opentelemetry"))]
mod tests {
    use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    #[test]
    fn the_current_span_is_found_and_none_outside() {
        assert_eq!(super::current(), None);
        let provider = SdkTracerProvider::builder().build();
        let tracer = provider.tracer("audit-test");
        tracer.in_span("handle request", |cx| {
            let sc = cx.span().span_context().clone();
            let t = super::current().expect("inside a span");
            assert_eq!(t.trace_hex(), sc.trace_id().to_string());
            assert_eq!(t.span_hex(), sc.span_id().to_string());
        });
        assert_eq!(super::current(), None);
    }
}
