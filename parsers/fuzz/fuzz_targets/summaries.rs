//! Fuzz target: the histogram and table parsers.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::run_builtins(
        &[
            "biolatency", "biopattern", "bitesize", "cpudist", "hardirqs", "runqlat", "softirqs",
            "syscount",
        ],
        data,
    );
});
