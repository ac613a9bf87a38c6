//! `GET /api/tail?<filters>`: new records as Server-Sent Events, as they are
//! written. Each event is `event: record`, `id: <position>`, `data: <record as
//! stored>`; a client that reconnects with `Last-Event-ID` (or asks `after=<position>`)
//! goes on from there without a gap or a repeat, else the stream starts at the
//! store's newest record. The filters are those of `GET /api/records`, narrowed to
//! the caller's tenant; `order`, `cursor` and `limit` do not apply.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use audit_runtime::store::Follower;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use crate::State as Viewer;
use crate::error::ApiError;
use crate::params;

/// Records read per look at the store.
const BATCH: usize = 500;

pub(crate) async fn tail(
    State(v): State<Arc<Viewer>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = v.access.check(&headers)?;
    let (own, filters) = params::split(raw.as_deref(), &["after", "cursor", "order", "limit"]);
    let mut after = headers
        .get("last-event-id")
        .map(|h| position(h.to_str().unwrap_or("")))
        .transpose()?;
    for (k, val) in own {
        if k != "after" {
            return Err(ApiError::bad_request(format!(
                "`{k}` does not apply to a tail: it follows new records in the order \
                 they are written (resume with `after=<id of the last event>`)"
            )));
        }
        after = after.or(Some(position(&val)?));
    }
    let query = params::query(Some(&filters), &scope)?.limit(BATCH);
    let follower = match after {
        Some(seq) => Follower::new(query, seq),
        None => {
            v.stores
                .with(move |store| Follower::from_now(store, query).map_err(ApiError::store))
                .await?
        }
    };
    let stores = Arc::clone(&v.stores);
    let interval = v.tail_interval;
    let events = futures_util::stream::unfold(Some(follower), move |state| {
        let stores = Arc::clone(&stores);
        async move {
            let mut follower = state?;
            loop {
                let step = stores
                    .with(move |store| {
                        let rows = follower.next(store).map_err(ApiError::store);
                        Ok((follower, rows))
                    })
                    .await;
                match step {
                    Ok((f, Ok(rows))) if rows.is_empty() => {
                        follower = f;
                        tokio::time::sleep(interval).await;
                    }
                    Ok((f, Ok(rows))) => {
                        let events: Vec<Result<Event, Infallible>> = rows
                            .into_iter()
                            .map(|s| {
                                Ok(Event::default()
                                    .event("record")
                                    .id(s.seq.to_string())
                                    .json_data(&s.record)
                                    .unwrap_or_else(|e| {
                                        Event::default().event("error").data(e.to_string())
                                    }))
                            })
                            .collect();
                        return Some((futures_util::stream::iter(events), Some(f)));
                    }
                    // The store failed: say so and end the stream (the client
                    // reconnects with its Last-Event-ID and loses nothing).
                    Ok((_, Err(e))) | Err(e) => {
                        let event = Event::default().event("error").data(e.message);
                        return Some((futures_util::stream::iter(vec![Ok(event)]), None));
                    }
                }
            }
        }
    });
    use futures_util::StreamExt as _;
    Ok(Sse::new(events.flatten()).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A store position (`Last-Event-ID`, `after`).
fn position(v: &str) -> Result<i64, ApiError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("`{v}` is not a record position")))
}
