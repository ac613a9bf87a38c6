//! `GET /api/export`: every record of a filter, streamed page by page (JSON Lines,
//! each record as stored, or CSV), in constant memory (`limit` sets the size of a
//! page of the walk, 1 000 by default; it does not cap the export). A client that goes away
//! stops the walk at the next page.

use std::sync::Arc;

use audit_runtime::Record;
use audit_runtime::store::Query;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::State as Viewer;
use crate::error::ApiError;
use crate::params;

/// Records per page of the walk.
const PAGE: usize = 1000;

#[derive(Clone, Copy)]
enum Format {
    JsonLines,
    Csv,
}

pub(crate) async fn export(
    State(v): State<Arc<Viewer>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = v.access.check(&headers)?;
    // `format` and `cursor` are the export's own parameters; `limit` sets the size
    // of each page of the walk, not a cap on the export.
    let (own, filters) = params::split(raw.as_deref(), &["format", "cursor"]);
    let mut format = Format::JsonLines;
    for (k, val) in own {
        match (&*k, &*val) {
            ("format", "jsonl") => format = Format::JsonLines,
            ("format", "csv") => format = Format::Csv,
            ("format", other) => {
                return Err(ApiError::bad_request(format!(
                    "`format={other}`: `jsonl` or `csv`"
                )));
            }
            _ => {} // a cursor: an export starts at the beginning
        }
    }
    let page_size = (!filters.split('&').any(|p| p.starts_with("limit="))).then_some(PAGE);
    let mut query = params::query(Some(&filters), &scope)?;
    if let Some(n) = page_size {
        query = query.limit(n);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stores = Arc::clone(&v.stores);
    tokio::spawn(async move {
        let failed = tx.clone();
        let walked = stores
            .with(move |store| {
                let mut q: Query = query;
                if let Format::Csv = format {
                    let _ = tx.blocking_send(Ok(CSV_HEADER.as_bytes().to_vec()));
                }
                loop {
                    let page = store.query(&q).map_err(ApiError::store)?;
                    let mut chunk = Vec::with_capacity(page.records.len() * 1024);
                    for r in &page.records {
                        match format {
                            Format::JsonLines => json_line(&mut chunk, r),
                            Format::Csv => csv_line(&mut chunk, r),
                        }
                    }
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        return Ok(()); // the client went away
                    }
                    match page.next {
                        Some(c) => q = q.after(c),
                        None => return Ok(()),
                    }
                }
            })
            .await;
        if let Err(e) = walked {
            // Cuts the body short: the client sees an incomplete transfer, never a
            // silently truncated export.
            let _ = failed.send(Err(std::io::Error::other(e.message))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let (content_type, name) = match format {
        Format::JsonLines => ("application/x-ndjson", "audit-export.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "audit-export.csv"),
    };
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

fn json_line(out: &mut Vec<u8>, r: &Record) {
    if serde_json::to_writer(&mut *out, r).is_ok() {
        out.push(b'\n');
    }
}

const CSV_HEADER: &str =
    "time,id,event,code,level,outcome,actor,tenant,entity_type,entity_id,description,error\n";

fn csv_line(out: &mut Vec<u8>, r: &Record) {
    let actor = r
        .context
        .actor
        .as_ref()
        .map(|a| a.email.clone().unwrap_or_else(|| a.id.clone()));
    let (entity_type, entity_id) = match &r.entity {
        Some(e) => (
            Some(e.kind.to_string()),
            e.id.as_ref().map(|id| match id {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        ),
        None => (None, None),
    };
    let cells = [
        Some(r.time.to_string()),
        Some(r.id.to_string()),
        Some(r.event.to_string()),
        Some(r.code.to_string()),
        Some(r.level.as_str().to_owned()),
        Some(
            match r.outcome {
                audit_runtime::OutcomeKind::Success => "success",
                audit_runtime::OutcomeKind::Failure => "failure",
            }
            .to_owned(),
        ),
        actor,
        r.context.tenant.clone(),
        entity_type,
        entity_id,
        Some(r.description.clone()),
        r.error.clone(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(c) = cell {
            csv_cell(out, c);
        }
    }
    out.push(b'\n');
}

/// One CSV cell: quoted when it must be, and a leading `=`, `+`, `-`, `@` or tab
/// defused with a `'` so that a spreadsheet never runs it as a formula.
fn csv_cell(out: &mut Vec<u8>, s: &str) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push(b'"');
    }
    if formula {
        out.push(b'\'');
    }
    for b in s.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    if quote {
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let cell = |s: &str| {
            let mut out = Vec::new();
            csv_cell(&mut out, s);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "\"'-1\"");
    }
}
