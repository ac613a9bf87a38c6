use audit::AuditEntity;

#[derive(Clone, AuditEntity)]
#[audit(entity = "usr")]
struct Unknown {
    #[audit(id)]
    id: i64,
}

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct NoId {
    email: String,
}

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct TwoIds {
    #[audit(id)]
    id: i64,
    #[audit(id)]
    uid: String,
}

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct BadKeys {
    #[audit(id)]
    id: i64,
    #[audit(redcat)]
    ssn: String,
    #[audit(redact, skip)]
    token: String,
    #[audit(diff = "jsn")]
    settings: Vec<u8>,
}

// A site that uses an entity whose derive failed: only the derive's error above is
// reported (the derive emits fallback impls), not a cascade here.
#[audit::audited(event = "user_update", entity = user, meta(user_email = &user.email))]
fn rename(user: &mut NoId) {
    user.email.push('!');
}

fn main() {}
