//! Rules that span several entries: unique event and entity codes.

use std::collections::HashMap;

use crate::diagnostic::ErrorKind;
use crate::model::Catalog;
use crate::parse::Reporter;

pub(crate) fn validate(cat: &Catalog, r: &mut Reporter) {
    let mut entity_codes: HashMap<u32, &str> = HashMap::new();
    for e in &cat.entities {
        if let Some(first) = entity_codes.insert(e.code, &e.name) {
            entity_codes.insert(e.code, first);
            r.error(
                ErrorKind::DuplicateEntityCode,
                e.span.clone(),
                format!(
                    "entity `{}` reuses code {} of entity `{first}`",
                    e.name, e.code
                ),
                Some("give every entity its own code".into()),
            );
        }
    }

    let mut event_codes: HashMap<u32, &str> = HashMap::new();
    for ev in &cat.events {
        if let Some(first) = event_codes.insert(ev.code, &ev.name) {
            event_codes.insert(ev.code, first);
            let next = cat.events.iter().map(|e| e.code).max().unwrap_or(0) + 1;
            r.error(
                ErrorKind::DuplicateEventCode,
                ev.code_span.clone(),
                format!(
                    "event `{}` reuses code {} of event `{first}`",
                    ev.name, ev.code
                ),
                Some(format!("the next unused code is {next}")),
            );
        }
    }
}
