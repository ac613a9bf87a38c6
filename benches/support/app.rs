//! The handler every pipeline benchmark emits through (shared by `benches/pipeline.rs`,
//! `benches/allocations.rs` and `benches/store.rs`): `app_launch` of the mnoe catalog
//! with its 4 fields, an integer and three strings.

use audit::audited;

/// The entity the handler acts on.
pub struct App {
    pub id: i64,
    pub uid: String,
    pub name: String,
    pub nid: String,
}

impl App {
    /// The app of the pipeline benchmarks (the store bench has its own).
    #[allow(dead_code)]
    pub fn sample() -> App {
        App {
            id: 4,
            uid: "cld-8y7f".into(),
            name: "Inventory Tracker".into(),
            nid: "inv-track".into(),
        }
    }
}

#[audited(event = "app_launch", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid))]
pub fn launch(app: &App) {}

/// The same event with `durability = "sync"`: the call returns once the primary
/// sinks committed it.
#[allow(dead_code)]
#[audited(event = "app_launch", meta(id = app.id, uid = &app.uid, name = &app.name, app_nid = &app.nid), durability = "sync")]
pub fn launch_sync(app: &App) -> Result<(), audit::DeliveryError> {
    Ok(())
}
