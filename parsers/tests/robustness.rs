//! Property tests: no parser panics on arbitrary bytes (random lines, real
//! fixture lines with bytes flipped, cut or repeated, overlong lines), and
//! formats round-trip where a text form can be generated.

use std::sync::OnceLock;

use parsers::{GenericSpec, Record, ToolParser, builtin, builtin_names, parse_all};
use proptest::prelude::*;

/// Every generic format with a representative spec.
fn generic_specs() -> Vec<GenericSpec> {
    let texts = [
        r#"format = "columns"
           columns = [{ name = "proc.pid", type = "int" }, { name = "latency", type = "duration_us" },
                      { name = "net.saddr", type = "ip" }, { name = "x", type = "hex" }, { name = "r", type = "rest" }]"#,
        r#"format = "fixed"
           columns = [{ name = "time", type = "clock", width = 9 }, { name = "proc.comm", type = "str", width = 17 },
                      { name = "v", type = "float", width = 6 }, { name = "r", type = "rest" }]"#,
        r#"format = "histogram""#,
        r#"format = "table"
           header = "NAME"
           columns = [{ name = "name", type = "str" }, { name = "t", type = "seconds" }, { name = "n", type = "int" }]"#,
        r#"format = "folded""#,
    ];
    texts.iter().map(|t| toml::from_str(t).unwrap()).collect()
}

/// Fresh instances of every builtin and generic parser.
fn all_parsers() -> Vec<Box<dyn ToolParser>> {
    let mut v: Vec<_> = builtin_names()
        .iter()
        .map(|n| builtin(n).unwrap())
        .collect();
    v.extend(generic_specs().iter().map(|s| s.build().unwrap()));
    v
}

/// All fixture lines, for mutation.
fn fixture_lines() -> &'static Vec<Vec<u8>> {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut lines = Vec::new();
        for tool in builtin_names() {
            for e in std::fs::read_dir(root.join(tool)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "txt") {
                    let text = std::fs::read(&p).unwrap();
                    lines.extend(text.split(|b| *b == b'\n').take(40).map(<[u8]>::to_vec));
                }
            }
        }
        lines
    })
}

fn feed_all(lines: &[Vec<u8>]) {
    for mut p in all_parsers() {
        let mut out = Vec::new();
        for l in lines {
            let _ = p.feed(l, &mut out);
        }
        p.finish(&mut out);
        // records must serialize
        for r in &out {
            serde_json::to_string(r).unwrap();
        }
    }
}

/// A fixture line with some bytes replaced, cut, or duplicated.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    let n = fixture_lines().len();
    (
        0..n,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<u16>(),
        0u8..4,
    )
        .prop_map(|(idx, flips, cut, mode)| {
            let mut l = fixture_lines()[idx].clone();
            for (pos, b) in flips {
                if !l.is_empty() {
                    let i = pos % l.len();
                    l[i] = b;
                }
            }
            match mode {
                0 => l.truncate(cut as usize % (l.len() + 1)),
                1 => {
                    let copy = l.clone();
                    l.extend_from_slice(&copy);
                }
                _ => {}
            }
            l
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20)) {
        feed_all(&lines);
    }

    #[test]
    fn printable_garbage_never_panics(lines in prop::collection::vec("[ -~\t]{0,160}", 0..20)) {
        let lines: Vec<Vec<u8>> = lines.into_iter().map(String::into_bytes).collect();
        feed_all(&lines);
    }

    #[test]
    fn mutated_fixture_lines_never_panic(lines in prop::collection::vec(mutated_line(), 1..30)) {
        feed_all(&lines);
    }

    #[test]
    fn folded_round_trip(frames in prop::collection::vec("[a-zA-Z0-9_./:\\[\\]-]{1,24}", 1..12), count in any::<u64>()) {
        let line = format!("{} {}", frames.join(";"), count);
        let mut p = toml::from_str::<GenericSpec>("format = \"folded\"").unwrap().build().unwrap();
        let mut out = Vec::new();
        p.feed(line.as_bytes(), &mut out).unwrap();
        let Some(Record::Stack(s)) = out.pop() else { panic!("no stack") };
        prop_assert_eq!(s.count, count);
        prop_assert_eq!(s.frames().collect::<Vec<_>>(), frames.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(s.to_folded_line(), line);
    }

    #[test]
    fn histogram_round_trip(counts in prop::collection::vec(0u64..1_000_000, 1..30), label in "[a-z0-9]{1,8}") {
        // printed like libbpf-tools' print_log2_hist
        let mut text = format!("Tracing... Hit Ctrl-C to end.\n\ndisk = {label}\t\n     usecs               : count    distribution\n");
        for (i, c) in counts.iter().enumerate() {
            let (low, high) = if i == 0 { (0u64, 1u64) } else { (1u64 << i, (1u64 << (i + 1)) - 1) };
            text.push_str(&format!("{low:>10} -> {high:<10} : {c:<8} |{:<40}|\n", "*"));
        }
        let mut p = builtin("biolatency").unwrap();
        let (recs, errs) = parse_all(p.as_mut(), text.as_bytes());
        prop_assert!(errs.is_empty());
        prop_assert_eq!(recs.len(), 1);
        let h = recs[0].as_histogram().unwrap();
        prop_assert_eq!(h.buckets.iter().map(|b| b.count).collect::<Vec<_>>(), counts);
        prop_assert_eq!(&*h.label.as_ref().unwrap().value, label.as_str());
    }

    /// Arbitrary argv (newlines, quotes, tabs, escape sequences, UTF-8) as
    /// execsnoop `-q` prints it: one line, the whole argv, control bytes
    /// escaped, never a raw control character in the value. (A backslash
    /// before a quote is ambiguous in `-q` output: the tool does not escape
    /// backslashes.)
    #[test]
    fn execsnoop_quoted_args_arrive_whole(args in prop::collection::vec("[a-zA-Z0-9 /._~=:'$|;&*?\u{e9}\u{4e2d}\u{1f600}\n\t\x1b\x07\"]{0,12}", 1..5)) {
        let printed: String = args.iter().map(|a| {
            let q: String = a.chars().map(|c| match c {
                '"' => "\\\"".to_owned(), '\n' => "\\n".to_owned(), '\t' => "\\t".to_owned(), c => c.to_string(),
            }).collect();
            format!("\"{q}\" ")
        }).collect();
        let line = format!("12:34:56 1000  prog             4242   1        0 {printed}");
        let mut p = builtin("execsnoop").unwrap();
        let mut out = Vec::new();
        p.feed(line.as_bytes(), &mut out).unwrap();
        let got = out[0].as_event().unwrap().field("proc.args").and_then(|v| v.as_str()).unwrap().to_owned();
        let want = parsers::escape::escape_str(&args.join(" ")).trim().to_owned();
        prop_assert!(!got.chars().any(char::is_control), "{:?}", got);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn execsnoop_round_trip(pid in 1u32..4_194_304, ppid in 1u32..4_194_304, uid in 0u32..100_000,
                            ret in -200i32..1, comm in "[a-zA-Z][a-zA-Z0-9 _./:-]{0,14}", args in "[!#-~][ -~]{0,100}") {
        let comm = comm.trim_end().to_owned();
        let line = format!("12:34:56 {uid:<6}{comm:<16} {pid:<6} {ppid:<6} {ret:>3} {args} ");
        let mut p = builtin("execsnoop").unwrap();
        let mut out = Vec::new();
        p.feed(line.as_bytes(), &mut out).unwrap();
        let e = out[0].as_event().unwrap();
        prop_assert_eq!((e.uid, e.pid, e.ppid), (Some(uid), Some(pid), Some(ppid)));
        prop_assert_eq!(e.comm.as_deref(), Some(comm.as_str()));
        prop_assert_eq!(e.field("ret").and_then(|v| v.as_int()), Some(i64::from(ret)));
        prop_assert_eq!(e.field("proc.args").and_then(|v| v.as_str()), Some(args.trim_end()));
    }
}

#[test]
fn overlong_and_binary_lines() {
    let long = vec![b'7'; 1 << 20];
    let mut spaced = b"12:00:00 ".to_vec();
    spaced.extend(std::iter::repeat_n(b' ', 1 << 16));
    let binary: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let lines = vec![long, spaced, binary, b"\xff\xfe\x00".to_vec(), Vec::new()];
    feed_all(&lines);
    // errors keep a bounded excerpt
    let mut p = builtin("opensnoop").unwrap();
    let e = p.feed(&lines[0], &mut Vec::new()).unwrap_err();
    assert!(e.line.len() <= parsers::MAX_ERROR_LINE + 4);
}
