//! Generic specs: a tool described only in the manifest (TOML) is parsed with
//! no new Rust code; invalid specs are rejected by `validate`.

use parsers::{GenericSpec, Record, SpecError, ValueRef, builtin, parse_all};

fn spec(toml_text: &str) -> GenericSpec {
    toml::from_str(toml_text).unwrap()
}

fn fixture(tool: &str, variant: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(tool)
        .join(format!("{variant}.txt"));
    std::fs::read(p).unwrap()
}

/// filelife (kprobe-based, so it cannot run here) prints
/// `%-8s %-6d %-16s %-7.2f %s`: described as a fixed-width spec.
#[test]
fn new_fixed_width_tool_from_a_spec() {
    let s = spec(
        r#"
        format = "fixed"
        kind = "generic"
        header = "TIME"
        columns = [
          { name = "time", type = "clock", width = 9 },
          { name = "proc.pid", type = "int", width = 7 },
          { name = "proc.comm", type = "str", width = 17 },
          { name = "proc.age", type = "duration_s", width = 8 },
          { name = "file.path", type = "rest" },
        ]
        "#,
    );
    s.validate().unwrap();
    let mut p = s.build_named("filelife").unwrap();
    let text = b"Tracing the lifespan of short-lived files ... Hit Ctrl-C to end.\n\
TIME     PID    COMM             AGE(s)  FILE\n\
09:19:41 2873   Web Content      0.01    my file.txt\n\
09:19:42 12     gcc              12.50   /tmp/cc1.s\n";
    let (recs, errs) = parse_all(p.as_mut(), text);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(recs.len(), 2);
    let e = recs[0].as_event().unwrap();
    assert_eq!(&*e.tool, "filelife");
    assert_eq!(
        (e.pid, e.comm.as_deref()),
        (Some(2873), Some("Web Content"))
    );
    assert_eq!(e.get("proc.age"), Some(ValueRef::Duration(10_000_000)));
    assert_eq!(e.get("file.path"), Some(ValueRef::Str("my file.txt")));
    assert_eq!(e.tool_time.unwrap().to_string(), "09:19:41");
    let e = recs[1].as_event().unwrap();
    assert_eq!(e.get("proc.age"), Some(ValueRef::Duration(12_500_000_000)));
}

/// The real gethostlatency output, described as whitespace columns, gives
/// the same values as the built-in parser.
#[test]
fn columns_spec_matches_builtin_on_a_real_capture() {
    let s = spec(
        r#"
        format = "columns"
        kind = "dns_lookup"
        header = "TIME"
        columns = [
          { name = "time", type = "clock" },
          { name = "proc.pid", type = "int" },
          { name = "proc.comm", type = "str" },
          { name = "latency", type = "duration_ms" },
          { name = "dns.host", type = "rest" },
        ]
        "#,
    );
    let text = fixture("gethostlatency", "canonical");
    let (generic, errs) = parse_all(s.build_named("gethostlatency").unwrap().as_mut(), &text);
    assert!(errs.is_empty(), "{errs:?}");
    let (builtin, _) = parse_all(builtin("gethostlatency").unwrap().as_mut(), &text);
    assert_eq!(generic, builtin);
}

#[test]
fn histogram_table_and_folded_specs() {
    let h = spec(r#"format = "histogram""#);
    let (recs, errs) = parse_all(
        h.build().unwrap().as_mut(),
        &fixture("biolatency", "canonical"),
    );
    assert!(errs.is_empty());
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.as_histogram().is_some()));

    let t = spec(
        r#"
        format = "table"
        header = "SYSCALL"
        columns = [
          { name = "syscall", type = "str" },
          { name = "count", type = "int" },
          { name = "total_time", type = "duration_us" },
        ]
        "#,
    );
    let text = fixture("syscount", "latency");
    let (generic, errs) = parse_all(t.build_named("syscount").unwrap().as_mut(), &text);
    assert!(errs.is_empty(), "{errs:?}");
    let (builtin, _) = parse_all(builtin("syscount").unwrap().as_mut(), &text);
    assert_eq!(generic, builtin);

    let f = spec(r#"format = "folded""#);
    let (recs, errs) = parse_all(
        f.build().unwrap().as_mut(),
        b"bash;main;read 12\nsleep;[unknown] 3\nnot folded\n",
    );
    assert_eq!(errs.len(), 1);
    let Record::Stack(s) = &recs[1] else { panic!() };
    assert_eq!((&*s.stack, s.count), ("sleep;[unknown]", 3));
}

#[test]
fn skip_prefixes_and_headerless_tables() {
    let t = spec(
        r#"
        format = "table"
        skip = ["WARN"]
        columns = [ { name = "cpu", type = "int" }, { name = "load", type = "float" } ]
        "#,
    );
    let (recs, errs) = parse_all(
        t.build().unwrap().as_mut(),
        b"WARN: x\n0 1.5\n1 0.25\n\n0 2\n",
    );
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].as_table().unwrap().rows.len(), 2);
}

#[test]
fn unknown_keys_are_rejected_by_serde() {
    let r: Result<GenericSpec, _> = toml::from_str("format = \"columns\"\ncolumnz = []");
    assert!(r.is_err());
    let r: Result<GenericSpec, _> = toml::from_str(
        "format = \"columns\"\ncolumns = [{ name = \"a\", type = \"int\", wdth = 3 }]",
    );
    assert!(r.is_err());
    let r: Result<GenericSpec, _> = toml::from_str("format = \"csv\"");
    assert!(r.is_err());
}

fn invalid(toml_text: &str) -> SpecError {
    let s = spec(toml_text);
    let e = s.validate().unwrap_err();
    assert!(s.build().is_err());
    e
}

#[test]
fn invalid_specs() {
    let e = invalid(
        r#"format = "fixed"
        columns = [{ name = "proc.pid", type = "int" }, { name = "x", type = "rest" }]"#,
    );
    assert!(matches!(e, SpecError::MissingWidth { .. }), "{e}");
    let e = invalid(
        r#"format = "columns"
        columns = [{ name = "a", type = "rest" }, { name = "b", type = "int" }]"#,
    );
    assert!(matches!(e, SpecError::RestNotLast { .. }), "{e}");
    let e = invalid(
        r#"format = "columns"
        columns = [{ name = "a", type = "integer" }]"#,
    );
    assert!(matches!(e, SpecError::UnknownType { .. }), "{e}");
    assert!(e.to_string().contains("integer"));
    let e = invalid(
        r#"format = "columns"
        columns = [{ name = "a", type = "int", width = 3 }]"#,
    );
    assert!(matches!(e, SpecError::BadWidth { .. }), "{e}");
    let e = invalid(
        r#"format = "columns"
        columns = [{ name = "proc.pid", type = "str" }]"#,
    );
    assert!(matches!(e, SpecError::ProcType { .. }), "{e}");
    let e = invalid(
        r#"format = "columns"
        columns = [{ name = "a", type = "int" }, { name = "a", type = "int" }]"#,
    );
    assert!(matches!(e, SpecError::BadName { .. }), "{e}");
    let e = invalid(
        r#"format = "columns"
        columns = [{ name = "Bad Name", type = "int" }]"#,
    );
    assert!(matches!(e, SpecError::BadName { .. }), "{e}");
    let e = invalid(
        r#"format = "histogram"
        columns = [{ name = "a", type = "int" }]"#,
    );
    assert!(matches!(e, SpecError::Format { .. }), "{e}");
    let e = invalid(r#"format = "columns""#);
    assert!(matches!(e, SpecError::Format { .. }), "{e}");
}
