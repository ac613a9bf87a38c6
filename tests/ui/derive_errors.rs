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
}

fn main() {}
