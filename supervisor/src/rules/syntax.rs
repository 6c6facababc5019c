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
pub(crate) const MAX_DEPTH: usize = 64;

#[path = "syntax_ast.rs"]
mod ast;
pub(crate) use ast::{CmpOp, Expr, Ident, Item, Literal, Span, StrOp, SyntaxError};

/// Parses a whole condition.
pub(crate) fn parse_condition(src: &str) -> Result<Expr, SyntaxError> {
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
#[path = "syntax_tests.rs"]
mod tests;
