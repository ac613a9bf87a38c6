// Bulk calls over the collections users hold, under `deny(warnings)`.
#![deny(warnings)]

#[derive(Clone, audit::AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    active: bool,
}

#[audit::audited(event = "users_deactivate", each = users, meta(reason = "slice"))]
fn slice(users: &mut [User]) {
    users.iter_mut().for_each(|u| u.active = false);
}

#[audit::audited(event = "users_deactivate", each = users, meta(reason = "vec"))]
fn vec(users: &mut Vec<User>) -> Result<usize, String> {
    users.push(User { id: 3, active: true });
    Ok(users.len())
}

#[audit::audited(event = "users_deactivate", each = users, op = "delete", meta(reason = "owned"))]
fn owned(users: Vec<User>) -> usize {
    users.len()
}

#[audit::audited(event = "users_deactivate", each = ret, meta(reason = "ret"))]
async fn created() -> Vec<User> {
    vec![User { id: 1, active: true }]
}

#[audit::audited(event = "user_revert", entity = u, reverts = record, meta(user_email = "x"))]
fn revert(u: &mut User, record: &audit::Record) {
    u.active = record.id.is_nil();
}

// A plain (non-`Result`) return value as the created entity: it borrows the value,
// not a temporary.
#[audit::audited(event = "user_update", entity = ret, meta(user_email = "x"))]
fn created_one() -> User {
    User { id: 5, active: true }
}

fn main() {
    let mut users = vec![User { id: 1, active: true }];
    slice(&mut users);
    let _ = vec(&mut users);
    let _ = owned(users.clone());
    let _ = created();
    let _ = revert;
    let _ = created_one();
}
