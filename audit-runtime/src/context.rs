//! Who acts, for whom, from where: the ambient context of emissions.
//!
//! The context is a per-thread value set by [`scope`] for synchronous code and by
//! [`AuditScopeExt::audit_scope`] for futures (set on every poll and restored after,
//! like `tracing`'s `Instrument`), so it is right across `.await`, across the threads
//! of a work-stealing runtime, and never leaks into the next request.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::scoped;

/// What kind of principal acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A person.
    #[default]
    User,
    /// Another service, with its own credentials.
    Service,
    /// The system itself (jobs, migrations).
    System,
}

/// The principal that performs an action. Its email and name are stored on the
/// record itself, so the trail outlives deleted users.
///
/// ```
/// let a = audit_runtime::Actor::user("u-42").email("ann@example.com").name("Ann");
/// assert_eq!(a.email.as_deref(), Some("ann@example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// Stable identifier.
    pub id: String,
    /// Email at the time of the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name at the time of the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// User, service or system.
    pub kind: ActorKind,
}

impl Actor {
    fn new(id: impl Into<String>, kind: ActorKind) -> Self {
        Actor {
            id: id.into(),
            email: None,
            name: None,
            kind,
        }
    }

    /// A person.
    pub fn user(id: impl Into<String>) -> Self {
        Actor::new(id, ActorKind::User)
    }

    /// A service.
    pub fn service(id: impl Into<String>) -> Self {
        Actor::new(id, ActorKind::Service)
    }

    /// The system.
    pub fn system(id: impl Into<String>) -> Self {
        Actor::new(id, ActorKind::System)
    }

    /// With an email.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// With a display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// The request an action came in through.
///
/// ```
/// let r = audit_runtime::Request::new("req-1").ip("203.0.113.9").user_agent("curl/8");
/// assert_eq!(r.ip.as_deref(), Some("203.0.113.9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Request {
    /// Request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Client user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// HTTP method (`POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The route template that matched (`/projects/{id}/members`), not the path:
    /// records of one endpoint group together, and ids in paths stay out of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The response status the handler returned, when it returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl Request {
    /// A request with an id.
    pub fn new(id: impl Into<String>) -> Self {
        Request {
            id: Some(id.into()),
            ..Request::default()
        }
    }

    /// With the client's address.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// With the client's user agent.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// With the HTTP method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// With the route template that matched.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }
}

/// Everything about an emission that does not come from the handler itself.
///
/// ```
/// use audit_runtime::{Actor, Context};
/// let ctx = Context::new().actor(Actor::user("u1")).tenant("acme").environment("production");
/// audit_runtime::scope(ctx, || {
///     assert_eq!(audit_runtime::current().unwrap().tenant.as_deref(), Some("acme"));
/// });
/// assert!(audit_runtime::current().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Context {
    /// Who acts.
    pub actor: Option<Actor>,
    /// Who really acts, when `actor` is being impersonated.
    pub impersonator: Option<Actor>,
    /// The tenant (organization) the action belongs to.
    pub tenant: Option<String>,
    /// Deployment environment (`production`, `staging`).
    pub environment: Option<String>,
    /// Where the action came from (`api`, `ui`, `automation`).
    pub source: Option<String>,
    /// The request.
    pub request: Option<Request>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// With an actor.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    /// With an impersonator.
    pub fn impersonator(mut self, actor: Actor) -> Self {
        self.impersonator = Some(actor);
        self
    }

    /// With a tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// With an environment.
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(env.into());
        self
    }

    /// With a source.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// With a request.
    pub fn request(mut self, request: Request) -> Self {
        self.request = Some(request);
        self
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Context>>> = const { RefCell::new(None) };
}

/// The context in effect on this thread (a reference-counted handle: cheap to keep).
pub fn current() -> Option<Arc<Context>> {
    scoped::get(&CURRENT)
}

/// Runs `f` with `ctx` as the context of every emission inside it.
///
/// The previous context is restored afterwards, also if `f` panics.
pub fn scope<R>(ctx: impl Into<Arc<Context>>, f: impl FnOnce() -> R) -> R {
    let _entered = scoped::Entered::enter(&CURRENT, Some(ctx.into()));
    f()
}

/// A future that runs with a context: see [`AuditScopeExt::audit_scope`].
pub type Scoped<F> = scoped::Scoped<F, Context>;

/// Attaches a context to a future, like `tracing`'s `Instrument`: the context is set
/// on every poll and restored after, whichever thread polls. No async runtime is
/// required.
///
/// ```
/// use audit_runtime::{Actor, AuditScopeExt, Context};
/// let fut = async { audit_runtime::current().unwrap().actor.clone().unwrap().id };
/// let id = futures_lite_block_on(fut.audit_scope(Context::new().actor(Actor::user("u7"))));
/// assert_eq!(id, "u7");
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
pub trait AuditScopeExt: Future + Sized {
    /// This future, run with `ctx`.
    fn audit_scope(self, ctx: impl Into<Arc<Context>>) -> Scoped<Self> {
        scoped::Scoped::new(self, &CURRENT, Some(ctx.into()))
    }

    /// This future, run with the context current now (to carry it into a spawned task).
    fn in_current_audit_scope(self) -> Scoped<Self> {
        scoped::Scoped::new(self, &CURRENT, current())
    }
}

impl<F: Future> AuditScopeExt for F {}
