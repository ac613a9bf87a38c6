//! Records carry the OpenTelemetry trace they were made in (feature
//! `opentelemetry`), with a real SDK tracer: in a synchronous span, across `.await`s
//! of a future that carries its context on a multi-threaded runtime, and none
//! outside any span.

use audit::audited;
use audit::testing::{capture, capture_async};
use opentelemetry::trace::{FutureExt, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

#[audited(event = "widget_create", meta(name = name))]
fn add_widget(name: &str) {}

#[audited(event = "widget_delete", meta(name = name))]
async fn remove_widget(name: &str) -> Result<(), String> {
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    Err(format!("{name} is locked"))
}

#[test]
fn a_record_names_the_span_it_was_emitted_in() {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("audit-test");
    let mut expected = None;
    let records = capture(|| {
        add_widget("outside");
        tracer.in_span("POST /widgets", |cx| {
            let sc = cx.span().span_context().clone();
            expected = Some((sc.trace_id().to_string(), sc.span_id().to_string()));
            add_widget("inside");
        });
    });
    assert_eq!(records[0].trace, None);
    let t = records[1].trace.expect("emitted inside a span");
    let (trace_id, span_id) = expected.unwrap();
    assert_eq!((t.trace_hex(), t.span_hex()), (trace_id.clone(), span_id));
    // In the record's JSON, as a W3C trace id.
    let json = serde_json::to_value(&records[1]).unwrap();
    assert_eq!(json["trace"]["trace_id"], trace_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_handler_keeps_its_trace_across_awaits() {
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer("audit-test");
    let span = tracer.start("DELETE /widgets/{id}");
    let cx = opentelemetry::Context::current_with_span(span);
    let trace_id = cx.span().span_context().trace_id().to_string();
    let (_, records) = capture_async(remove_widget("clock").with_context(cx)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].trace.unwrap().trace_hex(), trace_id);
}
