use audit::AuditEntity;

#[derive(Clone, PartialEq)]
struct Opaque(u8);

#[derive(Clone, AuditEntity)]
#[audit(entity = "user")]
struct User {
    #[audit(id)]
    id: i64,
    secret: Opaque,
}

fn main() {}
