//! From parsed conditions to [`Node`]s: resolves fields, expands lists and
//! macros (detecting cycles), types every literal against its field and
//! folds `event.kind` tests into kind sets. Every error points at the text
//! that caused it, inside the macro that holds it when it is in a macro.

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use memchr::memmem;

use super::{
    diag::{RuleError, Src},
    eval::{KindSet, Node, StrSet},
    fields::{self, FieldRef, Ty},
    glob::Glob,
    syntax::{self, CmpOp, Expr, Ident, Item, Literal, Span, StrOp},
};

/// A named list of values, as defined in a rules file.
#[derive(Debug, Clone)]
pub(crate) struct ListDef {
    /// The members as written (numbers as their text).
    pub(crate) items: Vec<String>,
}

/// A named condition fragment.
#[derive(Debug, Clone)]
pub(crate) struct MacroDef {
    /// The condition text.
    pub(crate) text: String,
    /// Where it was defined.
    pub(crate) src: Src,
}

/// Compiles conditions against a set of lists and macros.
pub(crate) struct Compiler<'d> {
    lists: &'d HashMap<String, ListDef>,
    macros: &'d HashMap<String, MacroDef>,
    /// Compiled macros (or the error that made them fail).
    done: HashMap<String, Result<Node, ()>>,
    /// Macros being compiled, for cycle detection.
    stack: Vec<String>,
    /// Errors found inside macros (each reported once).
    pub(crate) macro_errors: Vec<RuleError>,
}

impl<'d> Compiler<'d> {
    /// A compiler over these definitions.
    pub(crate) fn new(
        lists: &'d HashMap<String, ListDef>,
        macros: &'d HashMap<String, MacroDef>,
    ) -> Self {
        Compiler {
            lists,
            macros,
            done: HashMap::new(),
            stack: Vec::new(),
            macro_errors: Vec::new(),
        }
    }

    /// Parses and compiles the condition `text` found at `src`.
    pub(crate) fn condition(&mut self, text: &str, src: &Src) -> Result<Node, RuleError> {
        let expr = syntax::parse_condition(text).map_err(|e| src.error(e.span, e.message))?;
        self.expr(&expr, src)
    }

    /// Compiles every macro, so unused ones are checked too.
    pub(crate) fn check_all_macros(&mut self) {
        let mut names: Vec<&String> = self.macros.keys().collect();
        names.sort();
        for name in names {
            let _ = self.macro_node(name, None);
        }
    }

    fn expr(&mut self, e: &Expr, src: &Src) -> Result<Node, RuleError> {
        match e {
            Expr::And(terms) => Ok(simplify_and(self.exprs(terms, src)?)),
            Expr::Or(terms) => Ok(simplify_or(self.exprs(terms, src)?)),
            Expr::Not(inner, _) => Ok(match self.expr(inner, src)? {
                Node::True => Node::False,
                Node::False => Node::True,
                Node::Kind(set) => Node::Kind(set.complement()),
                n => Node::Not(Box::new(n)),
            }),
            Expr::Macro(id) => self.macro_node(&id.name, Some((id, src))).map_err(|e| {
                e.unwrap_or_else(|| {
                    src.error(
                        id.span,
                        format!(
                            "macro `{}` has errors (reported at its definition)",
                            id.name
                        ),
                    )
                })
            }),
            Expr::Compare { field, op, value } => self.compare(field, *op, value, src),
            Expr::In { field, items } => self.in_set(field, items, src),
            Expr::Match { field, op, pattern } => self.matcher(field, *op, pattern, src),
            Expr::Exists { field } => Ok(Node::Exists(resolve(field, src)?.0)),
        }
    }

    fn exprs(&mut self, terms: &[Expr], src: &Src) -> Result<Vec<Node>, RuleError> {
        terms.iter().map(|t| self.expr(t, src)).collect()
    }

    /// The compiled macro `name`. `Err(None)` when the macro itself has
    /// errors (already recorded in `macro_errors`).
    fn macro_node(
        &mut self,
        name: &str,
        at: Option<(&Ident, &Src)>,
    ) -> Result<Node, Option<RuleError>> {
        if let Some(done) = self.done.get(name) {
            return done.clone().map_err(|()| None);
        }
        let Some(def) = self.macros.get(name) else {
            let (id, src) = at.expect("only defined macros are checked without a reference");
            let hint = if self.lists.contains_key(name) {
                format!(" (`{name}` is a list: use it as `FIELD in {name}`)")
            } else if fields::resolve(name).is_some() {
                format!(" (`{name}` is a field: compare it, e.g. `{name} exists`)")
            } else {
                String::new()
            };
            return Err(Some(
                src.error(id.span, format!("unknown macro `{name}`{hint}")),
            ));
        };
        if let Some(pos) = self.stack.iter().position(|m| m == name) {
            let mut chain = self.stack[pos..].to_vec();
            chain.push(name.to_owned());
            let (id, src) = at.expect("a cycle has a reference");
            return Err(Some(
                src.error(id.span, format!("macro cycle: {}", chain.join(" -> "))),
            ));
        }
        self.stack.push(name.to_owned());
        let result = self.condition(&def.text.clone(), &def.src.clone());
        self.stack.pop();
        match result {
            Ok(node) => {
                self.done.insert(name.to_owned(), Ok(node.clone()));
                Ok(node)
            }
            Err(e) => {
                // A use of a broken macro inside another macro adds nothing.
                let echo = e
                    .message
                    .ends_with("has errors (reported at its definition)");
                if !echo && !self.macro_errors.contains(&e) {
                    self.macro_errors.push(e);
                }
                self.done.insert(name.to_owned(), Err(()));
                Err(None)
            }
        }
    }

    fn compare(
        &self,
        field: &Ident,
        op: CmpOp,
        value: &Literal,
        src: &Src,
    ) -> Result<Node, RuleError> {
        let (f, ty) = resolve(field, src)?;
        if !ty.is_ordered() && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(src.error(
                field.span,
                format!(
                    "operator `{}` needs a numeric field; `{}` is {}",
                    op.as_str(),
                    field.name,
                    ty.describe()
                ),
            ));
        }
        let ne = op == CmpOp::Ne;
        if !value.quoted
            && let Some((b, bty)) = fields::resolve(&value.text)
            && ty != Ty::Kind
        {
            if bty != ty {
                return Err(src.error(
                    value.span,
                    format!(
                        "cannot compare `{}` ({}) with `{}` ({})",
                        field.name,
                        ty.describe(),
                        value.text,
                        bty.describe()
                    ),
                ));
            }
            return Ok(Node::FieldCmp { a: f, op, b });
        }
        let node = match ty {
            Ty::Kind => {
                let set = KindSet::of(kind(value, src)?);
                Node::Kind(if ne { set.complement() } else { set })
            }
            Ty::Str => Node::StrEq {
                f,
                v: value.text.as_str().into(),
                ne,
            },
            Ty::Int | Ty::Duration => Node::IntCmp {
                f,
                op,
                v: number(value, ty, src)?,
            },
            Ty::Float => Node::FloatCmp {
                f,
                op,
                v: float(value, src)?,
            },
            Ty::Bool => Node::BoolEq {
                f,
                v: boolean(value, src)?,
                ne,
            },
            Ty::Ip => Node::IpEq {
                f,
                v: ip(value, src)?,
                ne,
            },
        };
        Ok(node)
    }

    fn in_set(&self, field: &Ident, items: &[Item], src: &Src) -> Result<Node, RuleError> {
        let (f, ty) = resolve(field, src)?;
        if matches!(ty, Ty::Float | Ty::Bool) {
            return Err(src.error(
                field.span,
                format!(
                    "`in` does not apply to `{}`, which is {}",
                    field.name,
                    ty.describe()
                ),
            ));
        }
        let values = self.expand(items, ty, src)?;
        if values.is_empty() {
            return Ok(Node::False);
        }
        let node = match ty {
            Ty::Kind => {
                let mut set = KindSet::NONE;
                for (lit, s) in &values {
                    set.0 |= KindSet::of(kind(lit, s)?).0;
                }
                Node::Kind(set)
            }
            Ty::Str => Node::StrIn {
                f,
                set: StrSet::new(values.iter().map(|(l, _)| l.text.as_str().into()).collect()),
            },
            Ty::Int | Ty::Duration => {
                let mut set = values
                    .iter()
                    .map(|(l, s)| number(l, ty, s))
                    .collect::<Result<Vec<_>, _>>()?;
                set.sort_unstable();
                set.dedup();
                Node::IntIn { f, set: set.into() }
            }
            Ty::Ip => Node::IpIn {
                f,
                set: values
                    .iter()
                    .map(|(l, s)| ip(l, s))
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
            },
            Ty::Float | Ty::Bool => {
                return Err(src.error(
                    field.span,
                    format!(
                        "`in` does not apply to `{}`, which is {}",
                        field.name,
                        ty.describe()
                    ),
                ));
            }
        };
        Ok(node)
    }

    /// The literal members of `items`, lists expanded; each with the source
    /// its text came from (a list's members point at the list). For fields
    /// that are not text, a bare word that names no list is a value
    /// (`event.kind in (open, exec)`); text values need quotes.
    fn expand(&self, items: &[Item], ty: Ty, src: &Src) -> Result<Vec<(Literal, Src)>, RuleError> {
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Value(lit) => out.push((lit.clone(), src.clone())),
                Item::List(id) if ty != Ty::Str && !self.lists.contains_key(&id.name) => {
                    let lit = Literal {
                        text: id.name.clone(),
                        quoted: false,
                        span: id.span,
                    };
                    out.push((lit, src.clone()));
                }
                Item::List(id) => {
                    let list = self.lists.get(&id.name).ok_or_else(|| {
                        let hint = if self.macros.contains_key(&id.name) {
                            format!(" (`{}` is a macro, not a list)", id.name)
                        } else {
                            " (to match the text itself, quote it)".to_owned()
                        };
                        src.error(id.span, format!("unknown list `{}`{hint}", id.name))
                    })?;
                    for text in &list.items {
                        let lit = Literal {
                            text: text.clone(),
                            quoted: true,
                            span: Span::new(0, 0),
                        };
                        // Errors in a list's members underline the use site.
                        let at = match src.base {
                            Some(b) => Src {
                                file: src.file.clone(),
                                value: b + id.span.start..b + id.span.end,
                                base: None,
                            },
                            None => src.clone(),
                        };
                        out.push((lit, at));
                    }
                }
            }
        }
        Ok(out)
    }

    fn matcher(
        &self,
        field: &Ident,
        op: StrOp,
        pattern: &Literal,
        src: &Src,
    ) -> Result<Node, RuleError> {
        let (f, ty) = resolve(field, src)?;
        if ty != Ty::Str {
            return Err(src.error(
                field.span,
                format!(
                    "`{}` needs a text field; `{}` is {}",
                    op.as_str(),
                    field.name,
                    ty.describe()
                ),
            ));
        }
        let v: Box<str> = pattern.text.as_str().into();
        Ok(match op {
            StrOp::Contains => Node::Contains {
                f,
                finder: Arc::new(memmem::Finder::new(pattern.text.as_bytes()).into_owned()),
            },
            StrOp::StartsWith => Node::StartsWith { f, v },
            StrOp::EndsWith => Node::EndsWith { f, v },
            StrOp::Glob => Node::Glob {
                f,
                pat: Arc::new(
                    Glob::new(&pattern.text).map_err(|e| src.error(pattern.span, e.to_string()))?,
                ),
            },
        })
    }
}

/// Resolves a field name or explains why it is unknown.
fn resolve(field: &Ident, src: &Src) -> Result<(FieldRef, Ty), RuleError> {
    fields::resolve(&field.name).ok_or_else(|| {
        let hint = fields::suggest(&field.name)
            .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
        src.error(field.span, format!("unknown field `{}`{hint}", field.name))
    })
}

fn kind(lit: &Literal, src: &Src) -> Result<parsers::EventKind, RuleError> {
    fields::kind_by_name(&lit.text).ok_or_else(|| {
        let names: Vec<&str> = fields::KINDS.iter().map(|k| k.as_str()).collect();
        src.error(
            lit.span,
            format!(
                "unknown event kind `{}` (expected one of {})",
                lit.text,
                names.join(", ")
            ),
        )
    })
}

/// An integer (decimal, `0x` hex, `0o` octal, negative) or, for durations,
/// a human duration (`10ms`, `1s`) or a number of nanoseconds.
fn number(lit: &Literal, ty: Ty, src: &Src) -> Result<i64, RuleError> {
    let t = lit.text.trim();
    if let Some(n) = parse_int(t) {
        return Ok(n);
    }
    if ty == Ty::Duration
        && let Ok(d) = humantime::parse_duration(t)
    {
        return i64::try_from(d.as_nanos()).map_err(|_| src.error(lit.span, "duration too long"));
    }
    let example = if ty == Ty::Duration {
        " (e.g. 10ms, 2s)"
    } else {
        ""
    };
    Err(src.error(
        lit.span,
        format!("`{}` is not {}{example}", lit.text, ty.describe()),
    ))
}

/// Parses `123`, `-5`, `0x1f`, `0o755`.
pub(crate) fn parse_int(t: &str) -> Option<i64> {
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn float(lit: &Literal, src: &Src) -> Result<f64, RuleError> {
    lit.text
        .trim()
        .parse()
        .map_err(|_| src.error(lit.span, format!("`{}` is not a number", lit.text)))
}

fn boolean(lit: &Literal, src: &Src) -> Result<bool, RuleError> {
    match lit.text.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(src.error(
            lit.span,
            format!("`{other}` is not a boolean (true or false)"),
        )),
    }
}

fn ip(lit: &Literal, src: &Src) -> Result<IpAddr, RuleError> {
    lit.text
        .trim()
        .parse()
        .map_err(|_| src.error(lit.span, format!("`{}` is not an IP address", lit.text)))
}

/// `And` of `nodes`, with constants folded.
fn simplify_and(nodes: Vec<Node>) -> Node {
    if nodes.iter().any(|n| matches!(n, Node::False)) {
        return Node::False;
    }
    let mut kept: Vec<Node> = nodes
        .into_iter()
        .filter(|n| !matches!(n, Node::True))
        .collect();
    // Cheap kind tests first.
    kept.sort_by_key(|n| !matches!(n, Node::Kind(_)));
    match kept.len() {
        0 => Node::True,
        1 => kept.remove(0),
        _ => Node::And(kept.into()),
    }
}

/// `Or` of `nodes`, with constants folded.
fn simplify_or(nodes: Vec<Node>) -> Node {
    if nodes.iter().any(|n| matches!(n, Node::True)) {
        return Node::True;
    }
    let mut kept: Vec<Node> = nodes
        .into_iter()
        .filter(|n| !matches!(n, Node::False))
        .collect();
    match kept.len() {
        0 => Node::False,
        1 => kept.remove(0),
        _ => Node::Or(kept.into()),
    }
}
