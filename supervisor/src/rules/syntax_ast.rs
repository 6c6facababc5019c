//! The condition's syntax tree: what [`super::parse_condition`] builds,
//! every node with its byte span in the text.

/// A byte range in the condition text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    /// First byte.
    pub(crate) start: usize,
    /// One past the last byte.
    pub(crate) end: usize,
}

impl Span {
    /// The span `start..end`.
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A name in a condition (field, macro or list) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    /// The name.
    pub(crate) name: String,
    /// Where.
    pub(crate) span: Span,
}

/// A value as written: quoted text or a bare word, typed later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Literal {
    /// The text, without quotes and with escapes resolved.
    pub(crate) text: String,
    /// Whether it was quoted.
    pub(crate) quoted: bool,
    /// Where (quotes included).
    pub(crate) span: Span,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
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
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) enum StrOp {
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
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) enum Item {
    /// A literal value.
    Value(Literal),
    /// A list, by name.
    List(Ident),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
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
pub(crate) struct SyntaxError {
    /// What is wrong.
    pub(crate) message: String,
    /// Where, in bytes of the condition text.
    pub(crate) span: Span,
}
