//! Fuzz target: the one-line-per-event parsers (`columns`-like formats).
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::run_builtins(
        &[
            "drsnoop", "execsnoop", "exitsnoop", "gethostlatency", "killsnoop", "mountsnoop",
            "opensnoop", "runqslower", "sigsnoop", "statsnoop", "tcplife", "tcpstates",
        ],
        data,
    );
});
