//! Unit tests of `syntax`.

use super::*;

fn field(e: &Expr) -> &str {
    match e {
        Expr::Compare { field, .. }
        | Expr::In { field, .. }
        | Expr::Match { field, .. }
        | Expr::Exists { field } => &field.name,
        Expr::Macro(m) => &m.name,
        other => panic!("not a predicate: {other:?}"),
    }
}

fn err(src: &str) -> SyntaxError {
    parse_condition(src).expect_err(src)
}

#[test]
fn every_comparison_operator() {
    for (text, op) in [
        ("=", CmpOp::Eq),
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<", CmpOp::Lt),
        ("<=", CmpOp::Le),
        (">", CmpOp::Gt),
        (">=", CmpOp::Ge),
    ] {
        let e = parse_condition(&format!("net.dport {text} 443")).unwrap();
        match e {
            Expr::Compare { op: o, value, .. } => {
                assert_eq!(o, op, "{text}");
                assert_eq!(value.text, "443");
                assert!(!value.quoted);
            }
            other => panic!("{other:?}"),
        }
    }
    // no spaces needed
    assert!(matches!(
        parse_condition("proc.uid>=1000").unwrap(),
        Expr::Compare { op: CmpOp::Ge, .. }
    ));
}

#[test]
fn string_operators() {
    for (word, op) in [
        ("contains", StrOp::Contains),
        ("startswith", StrOp::StartsWith),
        ("endswith", StrOp::EndsWith),
        ("glob", StrOp::Glob),
    ] {
        let e = parse_condition(&format!("file.path {word} \"/etc/*\"")).unwrap();
        match e {
            Expr::Match { op: o, pattern, .. } => {
                assert_eq!(o, op);
                assert_eq!(pattern.text, "/etc/*");
                assert!(pattern.quoted);
                assert_eq!(pattern.span, Span::new(11 + word.len(), 19 + word.len()));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn in_forms_and_exists() {
    let e = parse_condition("proc.comm in shells").unwrap();
    assert!(
        matches!(&e, Expr::In { items, .. } if matches!(&items[..], [Item::List(l)] if l.name == "shells"))
    );
    let e = parse_condition("proc.comm in (\"sh\", 'bash', shells, 22)").unwrap();
    let Expr::In { items, .. } = e else { panic!() };
    assert_eq!(items.len(), 4);
    assert!(matches!(&items[0], Item::Value(l) if l.text == "sh"));
    assert!(matches!(&items[1], Item::Value(l) if l.text == "bash"));
    assert!(matches!(&items[2], Item::List(l) if l.name == "shells"));
    assert!(matches!(&items[3], Item::Value(l) if l.text == "22"));
    assert!(
        matches!(parse_condition("x.y in ()").unwrap(), Expr::In { items, .. } if items.is_empty())
    );
    assert!(matches!(
        parse_condition("container.id exists").unwrap(),
        Expr::Exists { .. }
    ));
}

#[test]
fn and_binds_tighter_than_or_and_not_tighter_than_and() {
    let e = parse_condition("a or b and not c").unwrap();
    let Expr::Or(terms) = e else { panic!("{e:?}") };
    assert_eq!(field(&terms[0]), "a");
    let Expr::And(inner) = &terms[1] else {
        panic!()
    };
    assert_eq!(field(&inner[0]), "b");
    assert!(matches!(&inner[1], Expr::Not(m, _) if field(m) == "c"));

    let e = parse_condition("(a or b) and c").unwrap();
    let Expr::And(terms) = e else { panic!("{e:?}") };
    assert!(matches!(&terms[0], Expr::Or(_)));

    let e = parse_condition("not a and b").unwrap();
    assert!(matches!(e, Expr::And(t) if matches!(t[0], Expr::Not(..))));
    let e = parse_condition("a and b and c or d").unwrap();
    assert!(matches!(e, Expr::Or(t) if matches!(&t[0], Expr::And(x) if x.len() == 3)));
}

#[test]
fn keywords_need_word_boundaries() {
    // `android` is a macro, not `and` + `roid`; `order` is not `or`.
    let e = parse_condition("android or order").unwrap();
    assert!(matches!(e, Expr::Or(t) if field(&t[0]) == "android" && field(&t[1]) == "order"));
    let e = parse_condition("notice").unwrap();
    assert!(matches!(e, Expr::Macro(m) if m.name == "notice"));
}

#[test]
fn quoted_strings_and_escapes() {
    let e = parse_condition(r#"proc.args contains "a \"b\" \\ c\n""#).unwrap();
    let Expr::Match { pattern, .. } = e else {
        panic!()
    };
    assert_eq!(pattern.text, "a \"b\" \\ c\n");
    let e = parse_condition("file.path = 'it''").unwrap_err();
    assert!(e.message.contains("unexpected"), "{e:?}");
    let e = parse_condition("x.y = \"\"").unwrap();
    assert!(matches!(e, Expr::Compare { value, .. } if value.text.is_empty() && value.quoted));
}

#[test]
fn spans_point_into_the_text() {
    let src = "proc.comm = bash and file.path startswith /etc";
    let Expr::And(t) = parse_condition(src).unwrap() else {
        panic!()
    };
    let Expr::Compare { field, value, .. } = &t[0] else {
        panic!()
    };
    assert_eq!(&src[field.span.start..field.span.end], "proc.comm");
    assert_eq!(&src[value.span.start..value.span.end], "bash");
    let Expr::Match { pattern, .. } = &t[1] else {
        panic!()
    };
    assert_eq!(&src[pattern.span.start..pattern.span.end], "/etc");
}

#[test]
fn error_messages_and_positions() {
    let cases: &[(&str, &str, usize, usize)] = &[
        ("", "empty condition", 0, 0),
        ("   ", "empty condition", 0, 3),
        (
            "proc.comm",
            "expected an operator after field `proc.comm`",
            0,
            9,
        ),
        (
            "proc.comm = ",
            "expected a value after `=`, found the end",
            12,
            12,
        ),
        (
            "proc.comm = )",
            "expected a value after `=`, found `)`",
            12,
            13,
        ),
        (
            "a and",
            "expected a field, macro, `not` or `(`, found the end",
            5,
            5,
        ),
        (
            "a and )",
            "expected a field, macro, `not` or `(`, found `)`",
            6,
            7,
        ),
        ("a and or", "found keyword `or`", 6, 8),
        ("(a or b", "missing `)`", 7, 7),
        ("(a or b c", "expected `)`, `and` or `or`, found `c`", 8, 9),
        (
            "a b",
            "unexpected `b`: expected `and`, `or` or the end",
            2,
            3,
        ),
        ("x.y = \"abc", "unterminated string", 6, 10),
        ("x.y = \"a\\qb\"", "unknown escape `\\q`", 8, 10),
        ("x.y in", "expected a list name or `(` after `in`", 6, 6),
        (
            "x.y in [1]",
            "expected a list name or `(` after `in`",
            7,
            10,
        ),
        (
            "x.y in (1 2)",
            "expected `,` or `)` in `in (...)`, found `2`",
            10,
            11,
        ),
        ("x.y in (1,", "expected a value after `in (`", 10, 10),
        (
            "x.y in (1",
            "missing `)`: the condition ends inside `in (...)`",
            9,
            9,
        ),
        ("x.y contains", "expected a value after `contains`", 12, 12),
    ];
    for (src, msg, start, end) in cases {
        let e = err(src);
        assert!(
            e.message.contains(msg),
            "{src:?}: got {:?}, want {msg:?}",
            e.message
        );
        assert_eq!(e.span, Span::new(*start, *end), "{src:?}: {}", e.message);
    }
}

#[test]
fn depth_is_bounded() {
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(err(&deep).message.contains("nesting too deep"));
    let nots = format!("{}a", "not ".repeat(MAX_DEPTH + 1));
    assert!(err(&nots).message.contains("nesting too deep"));
    let ok = format!("{}a{}", "(".repeat(10), ")".repeat(10));
    assert!(parse_condition(&ok).is_ok());
}

#[test]
fn unicode_does_not_split_characters() {
    let e = err("a b\u{e9}c");
    assert_eq!(e.span, Span::new(2, 6));
    let e = err("\u{e9}");
    assert_eq!(e.span, Span::new(0, 2));
}
