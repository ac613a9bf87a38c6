//! Any text into the catalog parser, validator, lock check, docs renderer and error
//! renderer: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match audit_catalog::Catalog::parse("fuzz.toml", text) {
        Ok(cat) => {
            let _ = audit_catalog::render_markdown(&cat);
            let lock = audit_catalog::Lock::default().updated(&cat);
            let _ = lock.check(&cat);
            let _ = audit_catalog::Lock::parse("fuzz.lock", &lock.to_toml());
        }
        Err(e) => {
            for d in e.diagnostics() {
                let _ = d.render();
                let _ = d.to_string();
            }
        }
    }
    if let Err(errs) = audit_catalog::Lock::parse("fuzz.lock", text) {
        for d in errs {
            let _ = d.render();
        }
    }
});
