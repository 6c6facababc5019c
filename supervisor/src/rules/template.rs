//! Output templates: `"Shell {proc.comm} (pid {proc.pid})"`. Placeholders
//! name fields and are resolved when the rule loads; `{{` and `}}` are
//! literal braces; a field the event lacks renders as `<NA>`. An optional
//! part `[[ in pod {k8s.pod.name}]]` renders only when every field in it is
//! present and not empty, so an alert never shows a field it does not know.

use std::fmt::Write as _;

use super::{
    diag::{RuleError, Src},
    eval::Ctx,
    fields::{self, FieldRef},
    syntax::Span,
};

/// What a missing field renders as.
pub(crate) const MISSING: &str = "<NA>";

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(Box<str>),
    Field(FieldRef),
    /// `[[...]]`: shown only when all its fields have non-empty values.
    Optional(Template),
}

/// A compiled output template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pieces: Box<[Piece]>,
}

impl Template {
    /// Compiles `text`, found at `src`.
    pub(crate) fn compile(text: &str, src: &Src) -> Result<Template, RuleError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("[[") {
            let at = text.len() - rest.len();
            pieces.extend(Self::compile_plain(&rest[..open], at, src)?.pieces);
            let inner = &rest[open + 2..];
            let Some(close) = inner.find("]]") else {
                let at = at + open;
                return Err(src.error(
                    Span::new(at, at + 2),
                    "unclosed `[[` in output (an optional part ends with `]]`)",
                ));
            };
            let group = Self::compile_plain(&inner[..close], at + open + 2, src)?;
            pieces.push(Piece::Optional(group));
            rest = &inner[close + 2..];
        }
        let at = text.len() - rest.len();
        pieces.extend(Self::compile_plain(rest, at, src)?.pieces);
        Ok(Template {
            pieces: pieces.into(),
        })
    }

    /// Compiles a part without optional groups that starts at byte `base`
    /// of the output.
    fn compile_plain(text: &str, base: usize, src: &Src) -> Result<Template, RuleError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(n) = rest.find(['{', '}']) {
            lit.push_str(&rest[..n]);
            let at = base + text.len() - rest.len() + n;
            let tail = &rest[n..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                lit.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(src.error(
                    Span::new(at, at + 1),
                    "unmatched `}` in output (write `}}` for a brace)",
                ));
            }
            let Some(close) = tail.find('}') else {
                return Err(src.error(
                    Span::new(at, base + text.len()),
                    "unclosed `{` in output (write `{{` for a brace)",
                ));
            };
            let name = tail[1..close].trim();
            let span = Span::new(at + 1, at + close);
            let (f, _) = fields::resolve(name).ok_or_else(|| {
                let hint = fields::suggest(name)
                    .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
                src.error(span, format!("unknown field `{name}` in output{hint}"))
            })?;
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit).into()));
            }
            pieces.push(Piece::Field(f));
            rest = &tail[close + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit.into()));
        }
        Ok(Template {
            pieces: pieces.into(),
        })
    }

    /// The fields the template shows (optional parts included).
    pub(crate) fn fields(&self) -> Vec<FieldRef> {
        let mut out = Vec::new();
        for p in self.pieces.iter() {
            match p {
                Piece::Field(f) => out.push(*f),
                Piece::Optional(t) => out.extend(t.fields()),
                Piece::Text(_) => {}
            }
        }
        out
    }

    /// Renders the template for the event in `ctx`.
    pub(crate) fn render(&self, ctx: &Ctx<'_>) -> String {
        let mut out = String::with_capacity(64);
        for p in self.pieces.iter() {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => match ctx.get(*f) {
                    Some(v) => {
                        let _ = write!(out, "{}", v.human());
                    }
                    None => out.push_str(MISSING),
                },
                Piece::Optional(t) => {
                    if t.all_known(ctx) {
                        out.push_str(&t.render(ctx));
                    }
                }
            }
        }
        out
    }

    /// Whether every field of the template has a non-empty value.
    fn all_known(&self, ctx: &Ctx<'_>) -> bool {
        self.fields()
            .into_iter()
            .all(|f| ctx.get(f).is_some_and(|v| !v.to_string().is_empty()))
    }
}
