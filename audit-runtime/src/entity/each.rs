//! Many entities in one call (`#[audited(each = ...)]`): their parts, paired by id.
//!
//! An update clones the entities at entry ([`each_clone`]) and pairs them with the
//! entities after the body by id ([`each_updated`]): a pair is an update, an entity
//! only after is a creation, an entity only before is a removal (`current` null).
//! Order: the entities after the body, in their order, then the removed ones in
//! their order before. Parts computed after the body are handed to `out` one by one
//! (emitted at once: a large call never holds every difference in memory).

use std::collections::HashMap;

use super::{AuditEntity, EntityPart};

/// The entities as they are at entry.
#[doc(hidden)]
pub fn each_clone<'a, E: AuditEntity + Clone + 'a>(
    entities: impl IntoIterator<Item = &'a E>,
) -> Vec<E> {
    entities.into_iter().cloned().collect()
}

/// A map key for an entity id: its compact JSON text.
fn key(id: &serde_json::Value) -> String {
    id.to_string()
}

/// The part of each entity after an update, paired with its state at entry by id.
/// Entities still in their place pair without a lookup; the first one out of place
/// builds a map of the ids at entry.
#[doc(hidden)]
pub fn each_updated<'a, E: AuditEntity + 'a>(
    before: Vec<E>,
    after: impl IntoIterator<Item = &'a E>,
    mut out: impl FnMut(Box<EntityPart>),
) {
    let ids: Vec<serde_json::Value> = before.iter().map(|e| e.audit_id()).collect();
    let mut by_id: Option<HashMap<String, usize>> = None;
    let mut matched = vec![false; before.len()];
    for (place, e) in after.into_iter().enumerate() {
        let id = e.audit_id();
        let at = if ids.get(place) == Some(&id) && !matched[place] {
            Some(place)
        } else {
            let map = by_id.get_or_insert_with(|| {
                let mut m = HashMap::with_capacity(ids.len());
                for (i, id) in ids.iter().enumerate() {
                    m.entry(key(id)).or_insert(i);
                }
                m
            });
            map.get(&key(&id)).copied().filter(|&i| !matched[i])
        };
        let part = match at {
            Some(i) => {
                matched[i] = true;
                EntityPart {
                    id,
                    changes: e.audit_changes_from(&before[i]),
                }
            }
            None => e.audit_created(),
        };
        out(Box::new(part));
    }
    for (e, _) in before.iter().zip(&matched).filter(|(_, m)| !**m) {
        out(Box::new(e.audit_deleted()));
    }
}

/// Each entity's creation (`each = ret`).
#[doc(hidden)]
pub fn each_created<'a, E: AuditEntity + 'a>(
    entities: impl IntoIterator<Item = &'a E>,
    mut out: impl FnMut(Box<EntityPart>),
) {
    for e in entities {
        out(Box::new(e.audit_created()));
    }
}

/// Each entity's deletion, taken at entry (`op = "delete"`).
#[doc(hidden)]
pub fn each_deleted<'a, E: AuditEntity + 'a>(
    entities: impl IntoIterator<Item = &'a E>,
) -> Vec<Box<EntityPart>> {
    entities
        .into_iter()
        .map(|e| Box::new(e.audit_deleted()))
        .collect()
}

/// Each entity named by its id, taken at entry (events without `changes`).
#[doc(hidden)]
pub fn each_referenced<'a, E: AuditEntity + 'a>(
    entities: impl IntoIterator<Item = &'a E>,
) -> Vec<Box<EntityPart>> {
    entities
        .into_iter()
        .map(|e| Box::new(EntityPart::reference(e.audit_id())))
        .collect()
}
