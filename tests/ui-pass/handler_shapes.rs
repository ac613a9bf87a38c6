//! Typical handler shapes compile without a warning from generated code, under
//! `deny(warnings)` (what `-D warnings` in CI does).
#![deny(warnings)]

use audit::audited;

#[audited(event = "dashboard_create", meta(name = name))]
fn single_expression(name: &str) -> Result<(), String> {
    Ok(())
}

#[audited(event = "dashboard_create", meta(name = name))]
fn unit(name: &str) {}

#[audited(event = "dashboard_create", meta(name = name))]
fn unit_with_statements(name: &str) {
    let _ = name.len();
}

#[audited(event = "dashboard_create", meta(name = name))]
fn impl_trait(name: &str) -> impl std::fmt::Display {
    5
}

#[audited(event = "dashboard_create", meta(name = name))]
fn question_mark_and_early_return(name: &str) -> Result<u32, std::num::ParseIntError> {
    if name.is_empty() {
        return Ok(0);
    }
    let n: u32 = name.parse()?;
    Ok(n)
}

#[audited(event = "dashboard_create", meta(name = name.into()))]
fn generic<T: Into<String>>(name: T) -> Option<u8> {
    Some(1)
}

#[audited(event = "dashboard_delete", meta(name = name))]
async fn single_expression_async(name: &str) -> Result<u32, std::io::Error> {
    Ok(1)
}

#[audited(event = "dashboard_delete", meta(name = name))]
async fn unit_async(name: &str) {}

// Without arguments the body's braces were the user's own tokens in the expansion:
// `unused_braces` fired on each of these.
#[audited(event = "widget_create", meta(name = "x"))]
fn no_arguments() -> Result<(), String> { Ok(()) }

#[audited(event = "widget_create", meta(name = "x"), durability = "sync")]
fn no_arguments_sync() -> Result<(), audit::DeliveryError> { Ok(()) }

#[audited(event = "widget_create", meta(name = "x"), on = "failure")]
async fn no_arguments_async() -> Result<(), String> { Ok(()) }

#[audited(event = "widget_create", meta(name = "x"))]
fn no_arguments_impl_trait() -> impl std::fmt::Display { 5 }

struct Service;

impl Service {
    #[audited(event = "dashboard_delete", meta(name = name))]
    fn method(&self, name: &str) -> Result<(), String> {
        Err(format!("no {name}"))
    }

    #[audited(event = "dashboard_delete", meta(name = name))]
    async fn async_method(&self, name: &str) -> bool {
        true
    }
}

fn main() {
    single_expression("a").unwrap();
    unit("b");
    unit_with_statements("c");
    let _ = impl_trait("d").to_string();
    question_mark_and_early_return("7").unwrap();
    generic("e");
    drop(single_expression_async("f"));
    drop(unit_async("g"));
    let _ = Service.method("h");
    drop(Service.async_method("i"));
    let _ = no_arguments();
    let _ = no_arguments_sync();
    drop(no_arguments_async());
    let _ = no_arguments_impl_trait().to_string();
}
