//! The HTTP channel: batches POSTed to the user's collector as NDJSON (or as an
//! Elasticsearch `_bulk` body), with a health ping on its own thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Batch, Item, Sink, SinkError};

/// The body of a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFormat {
    /// One record per line (`application/x-ndjson`).
    Ndjson,
    /// An Elasticsearch `_bulk` body: an `index` action per record (into `index`,
    /// `_id` = record id, so a retried batch overwrites instead of duplicating), then
    /// the record. Per-item errors in the response are honoured.
    ElasticBulk {
        /// The target index.
        index: String,
    },
}

/// Counters of the health ping.
#[derive(Debug, Default)]
pub struct HttpHealth {
    pings: AtomicU64,
    misses: AtomicU64,
}

impl HttpHealth {
    /// Pings sent.
    pub fn pings(&self) -> u64 {
        self.pings.load(Ordering::Relaxed)
    }

    /// Pings that got no answer, a timeout or a 5xx.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// Options of an [`Http`] sink.
///
/// ```
/// use std::time::Duration;
/// use audit_runtime::sinks::{Http, HttpFormat};
/// let sink = Http::options()
///     .header("Authorization", "Bearer s3cr3t")
///     .max_batch(500)
///     .timeout(Duration::from_secs(5))
///     .ping("http://collector.internal/health", Duration::from_secs(30))
///     .build("http://collector.internal/audit");
/// # drop(sink);
/// let es = Http::options()
///     .format(HttpFormat::ElasticBulk { index: "audit".into() })
///     .build("http://127.0.0.1:9200/_bulk");
/// # drop(es);
/// ```
#[derive(Clone)]
pub struct HttpOptions {
    headers: Vec<(String, String)>,
    format: HttpFormat,
    max_batch: usize,
    timeout: Duration,
    ping: Option<(String, Duration)>,
    name: String,
    roots: Option<ureq::tls::RootCerts>,
}

/// Header values are not shown: they often carry credentials.
impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, _)| (k.as_str(), crate::REDACTED))
            .collect();
        f.debug_struct("HttpOptions")
            .field("headers", &headers)
            .field("format", &self.format)
            .field("max_batch", &self.max_batch)
            .field("timeout", &self.timeout)
            .field("ping", &self.ping)
            .field("name", &self.name)
            .field("custom_roots", &self.roots.is_some())
            .finish()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            headers: Vec::new(),
            format: HttpFormat::Ndjson,
            max_batch: 1000,
            timeout: Duration::from_secs(10),
            ping: None,
            name: "http".into(),
            roots: None,
        }
    }
}

impl HttpOptions {
    /// A header sent with every request (authentication, tenant routing).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// NDJSON (default) or Elasticsearch `_bulk`.
    pub fn format(mut self, format: HttpFormat) -> Self {
        self.format = format;
        self
    }

    /// At most this many records per POST (default 1000); the pipeline's
    /// `batch_size` and `max_wait` set how often batches leave (AdapTable's
    /// `auditLogsSendInterval`).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Time allowed for one request, connection included (default 10 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// GETs `url` every `interval` on a thread of its own and counts the misses
    /// ([`Http::health`]).
    pub fn ping(mut self, url: impl Into<String>, interval: Duration) -> Self {
        self.ping = Some((url.into(), interval));
        self
    }

    /// The sink's name in metrics and spool paths (default `http`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Trusts only the certificate authorities in this PEM file for `https://`
    /// collectors (by default: the Mozilla roots built in). Read now: a missing or
    /// empty file is an error here, not at the first batch.
    pub fn tls_root(mut self, pem_file: impl AsRef<std::path::Path>) -> Result<Self, SinkError> {
        let path = pem_file.as_ref();
        let fail = |m: String| SinkError::permanent(format!("http: {}: {m}", path.display()));
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| fail(e.to_string()))? {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            return Err(fail("no certificate in the file".into()));
        }
        self.roots = Some(ureq::tls::RootCerts::new_with_certs(&certs));
        Ok(self)
    }

    /// The sink, POSTing to `url`.
    pub fn build(self, url: impl Into<String>) -> Http {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false);
        if let Some(roots) = &self.roots {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(roots.clone())
                    .build(),
            );
        }
        let agent: ureq::Agent = config.build().into();
        let health = Arc::new(HttpHealth::default());
        let stop = Arc::new(AtomicBool::new(false));
        let pinger = self.ping.clone().map(|(url, interval)| {
            let (agent, health, stop) = (agent.clone(), Arc::clone(&health), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("audit-http-ping".into())
                .spawn(move || ping_loop(&agent, &url, interval, &health, &stop))
                .expect("the ping thread starts")
        });
        Http {
            agent,
            url: url.into(),
            options: self,
            health,
            stop,
            pinger,
        }
    }
}

fn ping_loop(
    agent: &ureq::Agent,
    url: &str,
    interval: Duration,
    health: &HttpHealth,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        health.pings.fetch_add(1, Ordering::Relaxed);
        let ok = agent
            .get(url)
            .call()
            .is_ok_and(|r| r.status().as_u16() < 500);
        if !ok {
            health.misses.fetch_add(1, Ordering::Relaxed);
        }
        // Sleep in short steps so that dropping the sink ends the thread promptly.
        let mut slept = Duration::ZERO;
        while slept < interval && !stop.load(Ordering::Relaxed) {
            let step = Duration::from_millis(20).min(interval - slept);
            std::thread::sleep(step);
            slept += step;
        }
    }
}

/// POSTs batches to the user's collector. 5xx, 408, 429, timeouts and refused
/// connections are retryable (the pipeline retries, then spools and replays); another
/// 4xx is a permanent error reported per record: the batch is re-sent record by
/// record, so that only the refused records are dead-lettered.
pub struct Http {
    agent: ureq::Agent,
    url: String,
    options: HttpOptions,
    health: Arc<HttpHealth>,
    stop: Arc<AtomicBool>,
    pinger: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("url", &self.url)
            .field("format", &self.options.format)
            .finish()
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.pinger.take() {
            let _ = t.join();
        }
    }
}

/// How the collector answered one POST.
enum Answer {
    Accepted,
    /// Try again later (5xx, 408, 429, network).
    Retry(String),
    /// Refused for good (other 4xx).
    Refused(String),
    /// `_bulk`: these items failed for good, the others were stored.
    Partial(Vec<uuid::Uuid>, String),
}

impl Http {
    /// A sink POSTing NDJSON to `url` with default options.
    pub fn new(url: impl Into<String>) -> Http {
        HttpOptions::default().build(url)
    }

    /// Options for building a sink.
    pub fn options() -> HttpOptions {
        HttpOptions::default()
    }

    /// The health ping's counters (keep this before moving the sink into a pipeline).
    pub fn health(&self) -> Arc<HttpHealth> {
        Arc::clone(&self.health)
    }

    fn body(&self, items: &[Item]) -> Vec<u8> {
        let mut body = Vec::with_capacity(items.iter().map(|i| i.json().len() + 80).sum());
        for item in items {
            if let HttpFormat::ElasticBulk { index } = &self.options.format {
                let action =
                    serde_json::json!({"index": {"_index": index, "_id": item.record().id}});
                body.extend_from_slice(action.to_string().as_bytes());
                body.push(b'\n');
            }
            body.extend_from_slice(item.json().as_bytes());
            body.push(b'\n');
        }
        body
    }

    fn post(&self, items: &[Item]) -> Answer {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-ndjson");
        for (k, v) in &self.options.headers {
            request = request.header(k, v);
        }
        let mut response = match request.send(&self.body(items)[..]) {
            Ok(r) => r,
            Err(e) => return Answer::Retry(format!("http: {e}")),
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200..=299 => match &self.options.format {
                HttpFormat::Ndjson => Answer::Accepted,
                HttpFormat::ElasticBulk { .. } => bulk_answer(items, &text),
            },
            408 | 429 | 500..=599 => Answer::Retry(format!("http: {status} {}", reply_size(&text))),
            _ => Answer::Refused(format!("http: {status} {}", reply_size(&text))),
        }
    }

    /// A refused batch, record by record: which records does the collector refuse?
    fn refused_records(&self, items: &[Item]) -> Result<Vec<uuid::Uuid>, SinkError> {
        let mut refused = Vec::new();
        for item in items {
            match self.post(std::slice::from_ref(item)) {
                Answer::Accepted => {}
                Answer::Retry(m) => return Err(SinkError::retryable(m)),
                Answer::Refused(_) => refused.push(item.record().id),
                Answer::Partial(ids, _) => refused.extend(ids),
            }
        }
        Ok(refused)
    }
}

/// How a reply is named in error messages: by its size only. A collector's reply may
/// quote the records it was sent, and error messages go to logs, metrics and
/// dead-letter files.
fn reply_size(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(
            "({} bytes of reply, not shown: it may quote records)",
            text.len()
        )
    }
}

/// Reads an Elasticsearch `_bulk` response: per-item 429 / 5xx make the batch
/// retryable (it is idempotent by `_id`); other item errors refuse those records.
fn bulk_answer(items: &[Item], text: &str) -> Answer {
    let Ok(response) = serde_json::from_str::<serde_json::Value>(text) else {
        return Answer::Retry("http: unreadable _bulk response".into());
    };
    if response["errors"] != serde_json::Value::Bool(true) {
        return Answer::Accepted;
    }
    let mut refused = Vec::new();
    let mut first = String::new();
    let results = response["items"].as_array().cloned().unwrap_or_default();
    for (item, result) in items.iter().zip(&results) {
        let op = result.as_object().and_then(|o| o.values().next());
        let status = op.and_then(|o| o["status"].as_u64()).unwrap_or(500);
        match status {
            200..=299 => {}
            429 | 500..=599 => return Answer::Retry(format!("http: _bulk item status {status}")),
            _ => {
                if first.is_empty() {
                    // The error's type only: its `reason` quotes the document.
                    first = op
                        .and_then(|o| o["error"]["type"].as_str())
                        .unwrap_or("unknown error")
                        .to_string();
                }
                refused.push(item.record().id);
            }
        }
    }
    Answer::Partial(refused, format!("_bulk refused records: {first}"))
}

impl Sink for Http {
    fn name(&self) -> &str {
        &self.options.name
    }

    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let mut refused = Vec::new();
        let mut why = String::new();
        for chunk in batch.chunks(self.options.max_batch) {
            match self.post(chunk) {
                Answer::Accepted => {}
                Answer::Retry(m) => return Err(SinkError::retryable(m)),
                Answer::Refused(m) => {
                    let ids = self.refused_records(chunk)?;
                    why = m;
                    refused.extend(ids);
                }
                Answer::Partial(ids, m) => {
                    why = m;
                    refused.extend(ids);
                }
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(SinkError::rejected(
                format!(
                    "the collector refused {} of {} records: {why}",
                    refused.len(),
                    batch.len()
                ),
                refused,
            ))
        }
    }

    fn health(&mut self) -> Result<(), SinkError> {
        let ping = self
            .options
            .ping
            .as_ref()
            .map_or(self.url.as_str(), |(u, _)| u);
        match self.agent.get(ping).call() {
            Ok(r) if r.status().as_u16() < 500 => Ok(()),
            Ok(r) => Err(SinkError::retryable(format!("http: health {}", r.status()))),
            Err(e) => Err(SinkError::retryable(format!("http: health: {e}"))),
        }
    }
}
