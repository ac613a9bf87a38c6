//! A multi-tenant "projects & members" service on axum, audited end to end:
//!
//! - [`AuditLayer`] gives every request its context: request id (echoed), client
//!   address, user agent, method, route template, and the actor and tenant that the
//!   authentication middleware ([`authenticate`]) found;
//! - handlers are `#[audited]`: the response status is the outcome (a 403 is a
//!   failure, with its own sentence from the catalog's `failure`);
//! - events that do not record changes still name their entity (`entity_id = ...`),
//!   so "everything that happened to project 7" is one query;
//! - `login` sets the actor itself once the password is checked ([`Audit::run_as`]).
//!
//! `cargo run -p axum-service-example` serves it on 127.0.0.1:3000 with the trail in
//! `axum-service.db`; `tests/service.rs` drives it over real HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audit::web::{Audit, AuditLayer, HttpStatus, Identity};
use audit::{Actor, audited};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

/// Who is signed in: what [`authenticate`] puts in the request.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The tenant the user belongs to.
    pub tenant: String,
    /// Whether the user may create and delete projects.
    pub admin: bool,
}

/// A project of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its members' emails.
    pub members: Vec<String>,
}

/// The service's data: projects by (tenant, id).
#[derive(Debug, Default)]
pub struct Projects {
    by_id: Mutex<HashMap<(String, u64), Project>>,
    next: AtomicU64,
}

/// Shared state.
pub type AppState = Arc<Projects>;

/// A handler's failure: its status and what the client is told (its `Display` is
/// the record's `error`; [`HttpStatus`] puts the status in the record).
#[derive(Debug)]
pub struct AppError(StatusCode, &'static str);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.1)
    }
}

impl HttpStatus for AppError {
    fn http_status(&self) -> u16 {
        self.0.as_u16()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// The authentication middleware, a stand-in for a real token check:
/// `Authorization: Bearer <user>:<tenant>[:admin]`.
pub async fn authenticate(mut req: Request, next: Next) -> Response {
    let user = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| {
            let mut parts = token.split(':');
            Some(User {
                id: parts.next()?.to_owned(),
                tenant: parts.next()?.to_owned(),
                admin: parts.next() == Some("admin"),
            })
        });
    if let Some(user) = user {
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

/// The audit identity of a request: the user [`authenticate`] found.
pub fn identity(req: &axum::http::request::Parts) -> Identity {
    let user = req.extensions.get::<User>();
    Identity {
        actor: user.map(|u| Actor::user(u.id.clone())),
        tenant: user.map(|u| u.tenant.clone()),
        impersonator: None,
    }
}

/// The service: every route audited.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/projects", post(create_project))
        .route("/projects/{id}", delete(delete_project))
        .route("/projects/{id}/members", post(add_member))
        .route("/login", post(login))
        .route("/slow/{id}", get(slow_delete))
        // Runs after routing (it sees the route template) and after authentication
        // (the layer added last runs first).
        .layer(AuditLayer::new().identity(identity))
        .layer(middleware::from_fn(authenticate))
        .with_state(state)
}

/// `POST /projects {"name": ...}`.
#[derive(Debug, Deserialize)]
pub struct NewProject {
    /// The project's name.
    pub name: String,
}

/// Creates a project (admins only): `201` with the project, or `403`.
#[audited(event = "project_create", meta(name = &body.name))]
pub async fn create_project(
    State(projects): State<AppState>,
    Extension(user): Extension<User>,
    Json(body): Json<NewProject>,
) -> impl IntoResponse {
    if !user.admin {
        return (StatusCode::FORBIDDEN, "admins only").into_response();
    }
    let id = projects.next.fetch_add(1, Ordering::Relaxed) + 1;
    let project = Project {
        id,
        name: body.name,
        members: Vec::new(),
    };
    projects
        .by_id
        .lock()
        .unwrap()
        .insert((user.tenant.clone(), id), project.clone());
    (StatusCode::CREATED, Json(project)).into_response()
}

/// Deletes a project of the user's tenant: `204`, `403` or `404`.
#[audited(event = "project_delete", entity_id = id, meta(project_id = id))]
pub async fn delete_project(
    State(projects): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<u64>,
) -> Result<StatusCode, AppError> {
    if !user.admin {
        return Err(AppError(StatusCode::FORBIDDEN, "admins only"));
    }
    match projects.by_id.lock().unwrap().remove(&(user.tenant, id)) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(AppError(StatusCode::NOT_FOUND, "no such project")),
    }
}

/// `POST /projects/{id}/members {"email": ..., "role": ...}`.
#[derive(Debug, Deserialize)]
pub struct NewMember {
    /// The member's email.
    pub email: String,
    /// `owner`, `editor` or `viewer`.
    pub role: String,
}

/// Adds a member to a project of the user's tenant.
#[audited(event = "member_add", entity_id = id, meta(project_id = id, email = &body.email, role = &body.role))]
pub async fn add_member(
    State(projects): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<u64>,
    Json(body): Json<NewMember>,
) -> Result<Json<Project>, AppError> {
    let mut by_id = projects.by_id.lock().unwrap();
    let project = by_id
        .get_mut(&(user.tenant, id))
        .ok_or(AppError(StatusCode::NOT_FOUND, "no such project"))?;
    project.members.push(body.email);
    Ok(Json(project.clone()))
}

/// `POST /login {"email": ..., "password": ...}`.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The user's email (and id, in this example).
    pub email: String,
    /// The password (redacted in the trail by the built-in list).
    pub password: String,
}

/// Signs in: no one is authenticated yet, so the handler names the actor itself
/// once the password is checked.
pub async fn login(audit: Audit, Json(c): Json<Credentials>) -> Response {
    let actor = Actor::user(c.email.clone());
    audit.run_as(actor, check_password(c)).await.into_response()
}

#[audited(event = "user_login", entity_id = &c.email, meta(email = &c.email, password = &c.password))]
async fn check_password(c: Credentials) -> Result<&'static str, AppError> {
    if c.password == "correct horse" {
        Ok("welcome")
    } else {
        Err(AppError(StatusCode::UNAUTHORIZED, "wrong password"))
    }
}

/// A delete that takes 5 s: a client that gives up first cancels it, and the
/// trail records the cancelled attempt.
#[audited(event = "project_delete", entity_id = id, meta(project_id = id))]
pub async fn slow_delete(Path(id): Path<u64>) -> StatusCode {
    tokio::time::sleep(Duration::from_secs(5)).await;
    StatusCode::NO_CONTENT
}
