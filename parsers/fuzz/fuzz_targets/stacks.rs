//! Fuzz target: the stack parsers (offcputime, wakeuptime, generic folded).
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::run_builtins(&["offcputime", "wakeuptime"], data);
    let spec: parsers::GenericSpec = serde_json_free_spec();
    if let Ok(mut p) = spec.build() {
        common::run(p.as_mut(), data);
    }
});

/// A `folded` spec, built without a deserializer.
fn serde_json_free_spec() -> parsers::GenericSpec {
    parsers::GenericSpec {
        format: parsers::Format::Folded,
        kind: parsers::EventKind::Generic,
        columns: Vec::new(),
        header: None,
        skip: Vec::new(),
    }
}
