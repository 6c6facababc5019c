//! Fuzz target: the generic `columns`, `fixed`, `histogram` and `table`
//! formats. The first input byte picks the spec, the rest is the tool output.
#![no_main]

#[path = "common.rs"]
mod common;

use parsers::{ColumnSpec, EventKind, Format, GenericSpec};

fn col(name: &str, ty: &str, width: Option<usize>) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        ty: ty.into(),
        width,
    }
}

fn spec(sel: u8) -> GenericSpec {
    let (format, columns) = match sel % 4 {
        0 => (
            Format::Columns,
            vec![
                col("time", "clock", None),
                col("proc.pid", "int", None),
                col("latency", "duration_ms", None),
                col("net.daddr", "ip", None),
                col("x", "hex", None),
                col("rest", "rest", None),
            ],
        ),
        1 => (
            Format::Fixed,
            vec![
                col("t", "seconds", Some(9)),
                col("proc.comm", "str", Some(17)),
                col("v", "float", Some(8)),
                col("r", "rest", None),
            ],
        ),
        2 => (Format::Histogram, Vec::new()),
        _ => (
            Format::Table,
            vec![col("name", "str", None), col("n", "int", None), col("d", "duration_us", None)],
        ),
    };
    GenericSpec {
        format,
        kind: EventKind::Generic,
        columns,
        header: (sel & 4 != 0).then(|| "NAME".into()),
        skip: if sel & 8 != 0 { vec!["#".into()] } else { Vec::new() },
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if let Ok(mut p) = spec(sel).build() {
        common::run(p.as_mut(), rest);
    }
});
