//! Inside an axum (tower) web service: [`AuditLayer`] gives every request its
//! [`Context`] — request id, client address, user agent, method, route template, and
//! the actor, tenant and impersonator your [`AuditLayer::identity`] resolver reads
//! from the request — so that `#[audited]` handlers (and everything they call) emit
//! with it, with no code of their own. Handlers that return a response status
//! (`StatusCode`, `(StatusCode, T)`, `Response`, `impl IntoResponse`, or a `Result`
//! of those) have it recorded (`request.status`), and a 4xx or 5xx is a failure.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use audit_runtime::Actor;
//! use audit_runtime::web::{AuditLayer, Identity};
//!
//! #[derive(Clone)]
//! struct User { id: String, org: String }
//!
//! let layer = AuditLayer::new()
//!     // Behind this load balancer, the client is the one it names in X-Forwarded-For.
//!     .trust_proxy(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))
//!     // What the authentication middleware (running before) put in the extensions.
//!     .identity(|req| {
//!         let user = req.extensions.get::<User>();
//!         Identity {
//!             actor: user.map(|u| Actor::user(u.id.clone())),
//!             tenant: user.map(|u| u.org.clone()),
//!             impersonator: None,
//!         }
//!     });
//! let app: axum::Router = axum::Router::new()
//!     .route("/projects/{id}", axum::routing::delete(|| async { "deleted" }))
//!     .layer(layer);
//! # let _ = app;
//! ```
//!
//! Add the layer with `Router::layer`, so that it runs after routing and sees the
//! route template (`MatchedPath`); serve with
//! `into_make_service_with_connect_info::<SocketAddr>()` so that it sees the peer's
//! address.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::request::Parts;

use crate::context::{Actor, AuditScopeExt, Context, Request, Scoped};
pub use crate::private::HttpStatus;

/// Who a request acts as, read from the request by [`AuditLayer::identity`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Who acts.
    pub actor: Option<Actor>,
    /// The tenant (organization) the request belongs to.
    pub tenant: Option<String>,
    /// Who really acts, when `actor` is being impersonated (an admin "logged in as").
    pub impersonator: Option<Actor>,
}

type Resolver = dyn Fn(&Parts) -> Identity + Send + Sync;

struct Config {
    request_id: HeaderName,
    trusted: Vec<IpAddr>,
    identity: Option<Arc<Resolver>>,
    base: Context,
}

/// A tower [`Layer`](tower_layer::Layer) that runs each request inside its audit
/// [`Context`] and echoes the request id in the response. See the module.
#[derive(Clone)]
pub struct AuditLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for AuditLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLayer")
            .field("request_id", &self.config.request_id)
            .field("trusted", &self.config.trusted)
            .field("identity", &self.config.identity.is_some())
            .finish()
    }
}

impl Default for AuditLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditLayer {
    /// A layer with no trusted proxy, no identity resolver and the `x-request-id`
    /// header.
    pub fn new() -> Self {
        AuditLayer {
            config: Arc::new(Config {
                request_id: HeaderName::from_static("x-request-id"),
                trusted: Vec::new(),
                identity: None,
                base: Context::new(),
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::get_mut(&mut self.config).expect("configured before it is cloned")
    }

    /// Reads (and echoes) the request id from this header instead of `x-request-id`.
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.config().request_id = name;
        self
    }

    /// A proxy whose `Forwarded` / `X-Forwarded-For` headers are believed. A request
    /// from any other peer is recorded with the peer's own address, whatever its
    /// headers claim (they are the client's to forge).
    pub fn trust_proxy(mut self, ip: IpAddr) -> Self {
        self.config().trusted.push(ip);
        self
    }

    /// Reads the actor, tenant and impersonator from the request (typically from
    /// what an authentication middleware put in its extensions). Without one, the
    /// context has none: set them in the handler with [`Audit::run_as`].
    pub fn identity(mut self, f: impl Fn(&Parts) -> Identity + Send + Sync + 'static) -> Self {
        self.config().identity = Some(Arc::new(f));
        self
    }

    /// Environment and source every request's context starts from (the rest of
    /// `base` is replaced per request).
    pub fn base(mut self, base: Context) -> Self {
        self.config().base = base;
        self
    }
}

impl<S> tower_layer::Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> AuditService<S> {
        AuditService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`AuditLayer`] wraps around yours.
#[derive(Clone)]
pub struct AuditService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for AuditService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditService").finish_non_exhaustive()
    }
}

impl<S, B, R> tower_service::Service<http::Request<B>> for AuditService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let id = request_id(&parts, &self.config.request_id);
        let context = Arc::new(self.config.context_of(&parts, &id));
        parts
            .extensions
            .insert(RequestContext(Arc::clone(&context)));
        let future = self
            .inner
            .call(http::Request::from_parts(parts, body))
            .audit_scope(context);
        ResponseFuture {
            inner: Box::pin(future),
            header: self.config.request_id.clone(),
            id: HeaderValue::from_str(&id).ok(),
        }
    }
}

/// The response future of [`AuditService`]: the inner one, run in the request's
/// context, then the request id added to the response.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<F> {
    inner: Pin<Box<Scoped<F>>>,
    header: HeaderName,
    id: Option<HeaderValue>,
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(Ok(mut response)) => {
                if let Some(id) = this.id.take() {
                    response.headers_mut().insert(this.header.clone(), id);
                }
                Poll::Ready(Ok(response))
            }
            other => other,
        }
    }
}

/// The request's id: the client's (or the proxy's) when it is a sensible token,
/// else a new UUIDv7.
fn request_id(parts: &Parts, header: &HeaderName) -> String {
    parts
        .headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

impl Config {
    fn context_of(&self, parts: &Parts, id: &str) -> Context {
        // The resolver is the application's code: a panic in it costs this request
        // its identity, not the request (the attempt is still recorded).
        let identity =
            self.identity
                .as_ref()
                .map(|f| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(parts)))
                        .unwrap_or_else(|payload| {
                            eprintln!(
                                "audit: the identity resolver panicked ({}); the request is \
                             recorded without an actor or tenant",
                                crate::panic::message(&*payload)
                            );
                            Identity::default()
                        })
                })
                .unwrap_or_default();
        let mut request = Request::new(id).method(parts.method.as_str());
        request.ip = self.client_ip(parts).map(|ip| ip.to_string());
        request.user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        request.route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned());
        Context {
            actor: identity.actor,
            impersonator: identity.impersonator,
            tenant: identity.tenant,
            environment: self.base.environment.clone(),
            source: self.base.source.clone(),
            request: Some(request),
        }
    }

    /// The peer, or (when the peer is a trusted proxy) the nearest untrusted address
    /// the forwarding headers name, read from the right.
    fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())?;
        if !self.trusted.contains(&peer) {
            return Some(peer);
        }
        let forwarded = forwarded_for(parts);
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.trusted.contains(ip))
                .unwrap_or(peer),
        )
    }
}

/// The addresses of `Forwarded: for=...` (RFC 7239) if present, else of
/// `X-Forwarded-For`, in header order; entries that are not addresses (`unknown`,
/// obfuscated names) end the list there, so nothing before them is believed.
fn forwarded_for(parts: &Parts) -> Vec<IpAddr> {
    let values: Vec<&str> = parts
        .headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let entries: Vec<String> = if !values.is_empty() {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("for").then(|| v.trim().to_owned())
                })
            })
            .collect()
    } else {
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let mut out = Vec::new();
    // Read from the right: the last entries were added by the nearest proxies.
    for entry in entries.iter().rev() {
        match parse_node(entry) {
            Some(ip) => out.push(ip),
            None => break,
        }
    }
    out.reverse();
    out
}

/// `192.0.2.1`, `192.0.2.1:443`, `"[2001:db8::1]:443"`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

/// The request's context, as the layer made it (in the request's extensions).
#[derive(Debug, Clone)]
struct RequestContext(Arc<Context>);

/// An extractor for handlers: the request's audit context, and a way to act as
/// someone else for part of the handler (after a login, say).
///
/// ```
/// use audit_runtime::{Actor, web::Audit};
/// async fn login(audit: Audit) -> &'static str {
///     // … the password checked …
///     audit.run_as(Actor::user("u-7"), async { /* #[audited] calls here */ }).await;
///     "welcome"
/// }
/// # let _ = login;
/// ```
#[derive(Debug, Clone)]
pub struct Audit {
    context: Arc<Context>,
}

impl Audit {
    /// The request's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Runs `fut` with this request's context and `actor` as the actor (the
    /// request's actor, if any, is replaced).
    pub fn run_as<F: Future>(&self, actor: Actor, fut: F) -> Scoped<F> {
        let mut context = (*self.context).clone();
        context.actor = Some(actor);
        fut.audit_scope(context)
    }

    /// Runs `fut` with this request's context changed by `change` (a tenant chosen
    /// in the handler, an impersonation).
    pub fn run_with<F: Future>(&self, change: impl FnOnce(&mut Context), fut: F) -> Scoped<F> {
        let mut context = (*self.context).clone();
        change(&mut context);
        fut.audit_scope(context)
    }
}

/// The request did not pass through [`AuditLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingAuditLayer;

impl std::fmt::Display for MissingAuditLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the audit context is missing: add audit::web::AuditLayer to the router")
    }
}

impl axum::response::IntoResponse for MissingAuditLayer {
    fn into_response(self) -> axum::response::Response {
        (http::StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = MissingAuditLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .map(|c| Audit {
                context: Arc::clone(&c.0),
            })
            .ok_or(MissingAuditLayer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], peer: &str) -> Parts {
        let mut b = http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut parts, _) = b.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    fn layer() -> AuditLayer {
        AuditLayer::new().trust_proxy("10.0.0.2".parse().unwrap())
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let l = layer();
        let ip = |p: &Parts| l.config.client_ip(p).map(|i| i.to_string());
        let forged = parts(&[("x-forwarded-for", "1.2.3.4")], "198.51.100.9:5000");
        assert_eq!(ip(&forged).as_deref(), Some("198.51.100.9"));
        let proxied = parts(
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.5")],
            "10.0.0.2:5000",
        );
        assert_eq!(
            ip(&proxied).as_deref(),
            Some("203.0.113.5"),
            "the nearest untrusted"
        );
        let rfc = parts(
            &[(
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8::7]:4711\"",
            )],
            "10.0.0.2:1",
        );
        assert_eq!(ip(&rfc).as_deref(), Some("2001:db8::7"));
        let hidden = parts(&[("forwarded", "for=unknown")], "10.0.0.2:1");
        assert_eq!(
            ip(&hidden).as_deref(),
            Some("10.0.0.2"),
            "nothing believable"
        );
    }

    #[test]
    fn a_panicking_identity_resolver_costs_the_identity_not_the_request() {
        let layer = AuditLayer::new().identity(|_| panic!("token store down"));
        let ctx = layer.config.context_of(&parts(&[], "192.0.2.1:9"), "id-1");
        assert_eq!(ctx.actor, None);
        assert_eq!(ctx.request.unwrap().id.as_deref(), Some("id-1"));
    }

    #[test]
    fn request_ids_are_kept_when_sensible_and_made_otherwise() {
        let h = HeaderName::from_static("x-request-id");
        assert_eq!(
            request_id(&parts(&[("x-request-id", "abc-1")], "1.1.1.1:1"), &h),
            "abc-1"
        );
        let odd = parts(&[("x-request-id", "has space")], "1.1.1.1:1");
        assert_eq!(
            uuid::Uuid::parse_str(&request_id(&odd, &h))
                .unwrap()
                .get_version_num(),
            7
        );
        let long = "x".repeat(200);
        let long = parts(&[("x-request-id", long.as_str())], "1.1.1.1:1");
        assert_ne!(request_id(&long, &h).len(), 200);
    }
}
