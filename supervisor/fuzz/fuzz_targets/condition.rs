//! Fuzzes the rules' condition parser: any input either parses or yields an
//! error whose span lies inside the input on character boundaries; it never
//! panics or overflows the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/rules/syntax.rs"]
#[allow(dead_code)]
mod syntax;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match syntax::parse_condition(text) {
        Ok(expr) => {
            std::hint::black_box(format!("{expr:?}"));
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{e:?}");
            assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end), "{e:?}");
            assert!(!e.message.is_empty());
        }
    }
});
