//! The condition language's syntax: a nom parser from condition text to an
//! [`Expr`] tree whose nodes carry byte spans into the text, so every later
//! error (unknown field, bad literal, ...) can point at the offending words.
//!
//! ```text
//! expr      := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" expr ")" | predicate | MACRO
//! predicate := FIELD cmp VALUE
//!            | FIELD "in" (LIST | "(" item ("," item)* ")")
//!            | FIELD ("contains" | "startswith" | "endswith" | "glob") VALUE
//!            | FIELD "exists"
//! cmp       := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
//! item      := VALUE | LIST
//! VALUE     := "double quoted" | 'single quoted' | bare-word
//! ```
//!
//! Keywords are lowercase; `and` binds tighter than `or`, `not` tighter than
//! both. A bare word value (`exec`, `443`, `10ms`, `127.0.0.1`) is typed later,
//! against the field it is compared with. Inside `in (...)` a bare word must
//! name a list; text needs quotes there.
//!
//! This module has no dependency on the rest of the agent so that it can be
//! fuzzed on its own (`supervisor/fuzz`).

use std::borrow::Cow;

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while, take_while1},
    character::complete::{char, multispace0},
    combinator::{opt, recognize},
    error::{ErrorKind, ParseError},
    sequence::pair,
};

/// How deeply parentheses and `not`s may nest before the parser gives up.
pub const MAX_DEPTH: usize = 64;

/// A byte range in the condition text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A name in a condition (field, macro or list) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A value as written: quoted text or a bare word, typed later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// The text, without quotes and with escapes resolved.
    pub text: String,
    /// Whether it was quoted.
    pub quoted: bool,
    /// Where (quotes included).
    pub span: Span,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` (or `==`).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Text-matching operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    /// `contains`.
    Contains,
    /// `startswith`.
    StartsWith,
    /// `endswith`.
    EndsWith,
    /// `glob` (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`).
    Glob,
}

impl StrOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            StrOp::Contains => "contains",
            StrOp::StartsWith => "startswith",
            StrOp::EndsWith => "endswith",
            StrOp::Glob => "glob",
        }
    }
}

/// One element of an `in (...)` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A literal value.
    Value(Literal),
    /// A list, by name.
    List(Ident),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// Any must hold.
    Or(Vec<Expr>),
    /// Negation; the span covers the `not` keyword.
    Not(Box<Expr>, Span),
    /// A macro, by name.
    Macro(Ident),
    /// `field op value`.
    Compare {
        /// The field.
        field: Ident,
        /// The operator.
        op: CmpOp,
        /// The value.
        value: Literal,
    },
    /// `field in (...)` or `field in list`.
    In {
        /// The field.
        field: Ident,
        /// The members.
        items: Vec<Item>,
    },
    /// `field contains|startswith|endswith|glob value`.
    Match {
        /// The field.
        field: Ident,
        /// The operator.
        op: StrOp,
        /// The pattern.
        pattern: Literal,
    },
    /// `field exists`.
    Exists {
        /// The field.
        field: Ident,
    },
}

/// Why a condition does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where, in bytes of the condition text.
    pub span: Span,
}

/// Parses a whole condition.
pub fn parse_condition(src: &str) -> Result<Expr, SyntaxError> {
    let p = P { src };
    if src.trim().is_empty() {
        return Err(SyntaxError {
            message: "empty condition".into(),
            span: Span::new(0, src.len()),
        });
    }
    let result = p.expr(src, 0);
    let (rest, expr) = result.map_err(|e| p.to_syntax_error(e))?;
    let (rest, _) = ws(rest).map_err(|e| p.to_syntax_error(e))?;
    if !rest.is_empty() {
        let word = next_token(rest);
        let start = p.offset(rest);
        return Err(SyntaxError {
            message: format!(
                "unexpected `{word}`: expected `and`, `or` or the end of the condition"
            ),
            span: Span::new(start, start + word.len()),
        });
    }
    Ok(expr)
}

/// A parse error while parsing: where the input stood and what was expected.
#[derive(Debug)]
struct PErr<'a> {
    input: &'a str,
    len: usize,
    message: Cow<'static, str>,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PErr {
            input,
            len: 0,
            message: Cow::Borrowed("syntax error"),
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

/// A hard error (no backtracking) at `input`, underlining `len` bytes.
fn fail<'a, T>(
    input: &'a str,
    len: usize,
    message: impl Into<Cow<'static, str>>,
) -> PResult<'a, T> {
    Err(nom::Err::Failure(PErr {
        input,
        len,
        message: message.into(),
    }))
}

/// The words a condition reserves.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "startswith",
    "endswith",
    "glob",
    "exists",
];

fn ws(i: &str) -> PResult<'_, &str> {
    multispace0(i)
}

/// A name: a letter or `_`, then letters, digits, `_` and `.`.
fn ident_text(i: &str) -> PResult<'_, &str> {
    recognize(pair(
        take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.'),
    ))
    .parse(i)
}

/// The keyword `kw` as a whole word.
fn keyword<'a>(kw: &'static str) -> impl Fn(&'a str) -> PResult<'a, &'a str> {
    move |i| {
        let (rest, word) = ident_text(i)?;
        if word == kw {
            Ok((rest, word))
        } else {
            Err(nom::Err::Error(PErr::from_error_kind(i, ErrorKind::Tag)))
        }
    }
}

/// The first token of `rest`, for "unexpected ..." messages.
fn next_token(rest: &str) -> &str {
    let end = rest
        .char_indices()
        .find(|&(n, c)| n > 0 && (c.is_whitespace() || "()".contains(c)))
        .map_or(rest.len(), |(n, _)| n);
    let first = rest.chars().next().map_or(0, char::len_utf8);
    &rest[..end.max(first)]
}

/// Whether `c` may appear in a bare-word value.
fn is_bare(c: char) -> bool {
    !(c.is_whitespace() || "()\"',=<>!".contains(c))
}

/// Parser state: the whole text, to turn remaining input into offsets.
struct P<'s> {
    src: &'s str,
}

impl<'s> P<'s> {
    fn offset(&self, rest: &str) -> usize {
        self.src.len() - rest.len()
    }

    fn span(&self, before: &str, after: &str) -> Span {
        Span::new(self.offset(before), self.offset(after))
    }

    fn to_syntax_error(&self, e: nom::Err<PErr<'_>>) -> SyntaxError {
        match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => {
                let start = self.offset(e.input);
                SyntaxError {
                    message: e.message.into_owned(),
                    span: Span::new(start, start + e.len),
                }
            }
            nom::Err::Incomplete(_) => SyntaxError {
                message: "incomplete condition".into(),
                span: Span::new(self.src.len(), self.src.len()),
            },
        }
    }

    /// `and ("or" and)*`
    fn expr<'a>(&self, i: &'a str, depth: usize) -> PResult<'a, Expr> {
        let (mut i, first) = self.and(i, depth)?;
        let mut terms = vec![first];
        loop {
            let (j, _) = ws(i)?;
            match keyword("or")(j) {
                Ok((j, _)) => {
                    let (j, e) = self.and(j, depth)?;
                    terms.push(e);
                    i = j;
                }
                Err(_) => break,
            }
        }
        Ok((i, flatten(terms, Expr::Or)))
    }

    /// `unary ("and" unary)*`
    fn and<'a>(&self, i: &'a str, depth: usize) -> PResult<'a, Expr> {
        let (mut i, first) = self.unary(i, depth)?;
        let mut terms = vec![first];
        loop {
            let (j, _) = ws(i)?;
            match keyword("and")(j) {
                Ok((j, _)) => {
                    let (j, e) = self.unary(j, depth)?;
                    terms.push(e);
                    i = j;
                }
                Err(_) => break,
            }
        }
        Ok((i, flatten(terms, Expr::And)))
    }

    /// `"not" unary | "(" expr ")" | predicate | macro`
    fn unary<'a>(&self, i: &'a str, depth: usize) -> PResult<'a, Expr> {
        let (i, _) = ws(i)?;
        if depth >= MAX_DEPTH {
            return fail(
                i,
                1,
                format!("nesting too deep (more than {MAX_DEPTH} levels)"),
            );
        }
        if let Ok((j, _)) = keyword("not")(i) {
            let span = self.span(i, j);
            let (j, e) = self.unary(j, depth + 1)?;
            return Ok((j, Expr::Not(Box::new(e), span)));
        }
        if let Ok((j, _)) = char::<_, PErr>('(').parse(i) {
            let (j, e) = self.expr(j, depth + 1)?;
            let (j, _) = ws(j)?;
            return match char::<_, PErr>(')').parse(j) {
                Ok((j, _)) => Ok((j, e)),
                Err(_) if j.is_empty() => {
                    fail(j, 0, "missing `)`: the condition ends inside parentheses")
                }
                Err(_) => {
                    let tok = next_token(j);
                    fail(
                        j,
                        tok.len(),
                        format!("expected `)`, `and` or `or`, found `{tok}`"),
                    )
                }
            };
        }
        self.predicate(i)
    }

    /// A field with its operator and operand, or a macro name.
    fn predicate<'a>(&self, i: &'a str) -> PResult<'a, Expr> {
        let Ok((j, name)) = ident_text(i) else {
            if i.is_empty() {
                return fail(
                    i,
                    0,
                    "expected a field, macro, `not` or `(`, found the end of the condition",
                );
            }
            let tok = next_token(i);
            return fail(
                i,
                tok.len(),
                format!("expected a field, macro, `not` or `(`, found `{tok}`"),
            );
        };
        if KEYWORDS.contains(&name) {
            return fail(
                i,
                name.len(),
                format!("expected a field, macro, `not` or `(`, found keyword `{name}`"),
            );
        }
        let field = Ident {
            name: name.to_owned(),
            span: self.span(i, j),
        };
        let (k, _) = ws(j)?;
        if let Ok((k, op)) = cmp_op(k) {
            let (k, value) = self.value(k, op.as_str())?;
            return Ok((k, Expr::Compare { field, op, value }));
        }
        if let Ok((k, _)) = keyword("in")(k) {
            let (k, items) = self.in_items(k)?;
            return Ok((k, Expr::In { field, items }));
        }
        if let Ok((k, op)) = str_op(k) {
            let (k, pattern) = self.value(k, op.as_str())?;
            return Ok((k, Expr::Match { field, op, pattern }));
        }
        if let Ok((k, _)) = keyword("exists")(k) {
            return Ok((k, Expr::Exists { field }));
        }
        if name.contains('.') {
            return fail(
                i,
                name.len(),
                format!(
                    "expected an operator after field `{name}` (=, !=, <, <=, >, >=, in, contains, startswith, endswith, glob, exists)"
                ),
            );
        }
        Ok((j, Expr::Macro(field)))
    }

    /// The operand of `op`: a quoted string or a bare word.
    fn value<'a>(&self, i: &'a str, op: &str) -> PResult<'a, Literal> {
        let (i, _) = ws(i)?;
        if let Some(q) = i.chars().next().filter(|c| *c == '"' || *c == '\'') {
            return self.quoted(i, q);
        }
        match take_while1::<_, _, PErr>(is_bare).parse(i) {
            Ok((j, word)) => Ok((
                j,
                Literal {
                    text: word.to_owned(),
                    quoted: false,
                    span: self.span(i, j),
                },
            )),
            Err(_) if i.is_empty() => fail(
                i,
                0,
                format!("expected a value after `{op}`, found the end of the condition"),
            ),
            Err(_) => {
                let tok = next_token(i);
                fail(
                    i,
                    tok.len(),
                    format!("expected a value after `{op}`, found `{tok}`"),
                )
            }
        }
    }

    /// A string in `q` quotes; `\\`, `\"`, `\'`, `\n` and `\t` are escapes.
    fn quoted<'a>(&self, i: &'a str, q: char) -> PResult<'a, Literal> {
        let mut text = String::new();
        let mut chars = i.char_indices().skip(1);
        while let Some((n, c)) = chars.next() {
            match c {
                c if c == q => {
                    let j = &i[n + 1..];
                    return Ok((
                        j,
                        Literal {
                            text,
                            quoted: true,
                            span: self.span(i, j),
                        },
                    ));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, 't')) => text.push('\t'),
                    Some((_, e @ ('\\' | '"' | '\''))) => text.push(e),
                    Some((m, e)) => {
                        return fail(
                            &i[n..],
                            m + e.len_utf8() - n,
                            format!("unknown escape `\\{e}` (use \\\\, \\\", \\', \\n or \\t)"),
                        );
                    }
                    None => break,
                },
                c => text.push(c),
            }
        }
        fail(i, i.len(), "unterminated string: missing the closing quote")
    }

    /// After `in`: a list name or a parenthesized set of values and lists.
    fn in_items<'a>(&self, i: &'a str) -> PResult<'a, Vec<Item>> {
        let (i, _) = ws(i)?;
        if let Ok((j, name)) = ident_text(i) {
            let list = Ident {
                name: name.to_owned(),
                span: self.span(i, j),
            };
            return Ok((j, vec![Item::List(list)]));
        }
        let Ok((mut i, _)) = char::<_, PErr>('(').parse(i) else {
            let tok = next_token(i);
            return fail(i, tok.len(), "expected a list name or `(` after `in`");
        };
        let mut items = Vec::new();
        loop {
            let (j, _) = ws(i)?;
            if items.is_empty()
                && let Ok((j, _)) = char::<_, PErr>(')').parse(j)
            {
                return Ok((j, items));
            }
            let (j, item) = self.item(j)?;
            items.push(item);
            let (j, _) = ws(j)?;
            if let Ok((j, _)) = char::<_, PErr>(',').parse(j) {
                i = j;
                continue;
            }
            if let Ok((j, _)) = char::<_, PErr>(')').parse(j) {
                return Ok((j, items));
            }
            if j.is_empty() {
                return fail(j, 0, "missing `)`: the condition ends inside `in (...)`");
            }
            let tok = next_token(j);
            return fail(
                j,
                tok.len(),
                format!("expected `,` or `)` in `in (...)`, found `{tok}`"),
            );
        }
    }

    /// One member of `in (...)`: a quoted string, a number-like word, or a list.
    fn item<'a>(&self, i: &'a str) -> PResult<'a, Item> {
        if let Ok((j, name)) = ident_text(i)
            && !j.starts_with(|c: char| is_bare(c))
        {
            return Ok((
                j,
                Item::List(Ident {
                    name: name.to_owned(),
                    span: self.span(i, j),
                }),
            ));
        }
        let (j, lit) = self.value(i, "in (")?;
        Ok((j, Item::Value(lit)))
    }
}

/// One term is itself; several are combined with `combine`.
fn flatten(mut terms: Vec<Expr>, combine: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        terms.remove(0)
    } else {
        combine(terms)
    }
}

fn cmp_op(i: &str) -> PResult<'_, CmpOp> {
    let ops: [(&str, CmpOp); 7] = [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<=", CmpOp::Le),
        (">=", CmpOp::Ge),
        ("=", CmpOp::Eq),
        ("<", CmpOp::Lt),
        (">", CmpOp::Gt),
    ];
    for (t, op) in ops {
        if let Ok((j, _)) = tag::<_, _, PErr>(t).parse(i) {
            return Ok((j, op));
        }
    }
    Err(nom::Err::Error(PErr::from_error_kind(i, ErrorKind::Tag)))
}

fn str_op(i: &str) -> PResult<'_, StrOp> {
    let (j, word) = opt(ident_text).parse(i)?;
    let op = match word {
        Some("contains") => StrOp::Contains,
        Some("startswith") => StrOp::StartsWith,
        Some("endswith") => StrOp::EndsWith,
        Some("glob") => StrOp::Glob,
        _ => return Err(nom::Err::Error(PErr::from_error_kind(i, ErrorKind::Tag))),
    };
    Ok((j, op))
}

#[cfg(test)]
mod tests {
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
}
