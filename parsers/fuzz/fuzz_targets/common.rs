//! Shared by the fuzz targets: feed the input, split on newlines, to parsers.

use parsers::ToolParser;

/// Feeds `data` line by line to `p`, then finishes; records must serialize.
pub fn run(p: &mut dyn ToolParser, data: &[u8]) {
    let mut out = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let _ = p.feed(line, &mut out);
    }
    p.finish(&mut out);
    for r in &out {
        std::hint::black_box(format!("{r:?}"));
    }
}

/// Runs every builtin parser named in `names` over `data`.
#[allow(dead_code)] // not every target uses it
pub fn run_builtins(names: &[&str], data: &[u8]) {
    for name in names {
        if let Some(mut p) = parsers::builtin(name) {
            run(p.as_mut(), data);
        }
    }
}
