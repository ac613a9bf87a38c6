// Bulk calls and reverts: `each` or `entity`, not both; `reverts = ...` only on
// events the catalog marks as reverts, and always on those; the reverted record
// given as a record or its id.
#[derive(Clone, audit::AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    email: String,
}

#[audit::audited(event = "users_deactivate", each = users, entity = users[0], meta(reason = "x"))]
fn both(users: &mut Vec<User>) {}

#[audit::audited(event = "user_update", entity = u, reverts = id, meta(user_email = &u.email))]
fn not_a_revert_event(u: &mut User, id: audit::Uuid) {}

#[audit::audited(event = "user_revert", entity = u, meta(user_email = &u.email))]
fn revert_without_its_record(u: &mut User) {}

#[audit::audited(event = "user_revert", entity = u, reverts = 42, meta(user_email = &u.email))]
fn reverts_a_number(u: &mut User) {}

#[audit::audited(event = "users_deactivate", each = users, meta(reason = "x"))]
fn not_entities(users: &mut Vec<i64>) {}

fn main() {}
