//! Validation of one manifest file: the TOML is read into spanned raw
//! entries, then each field is checked by its own small function, and every
//! error is a [`Diagnostic`] at the offending text (`file:line:col`, the
//! line, an underline), as the rules report theirs.

use std::{collections::HashMap, ops::Range, str::FromStr as _, time::Duration};

use nix::sys::signal::Signal;
use serde::Deserialize;
use toml::Spanned;

use super::{
    columns,
    manifest::{DEFAULT_STOP_TIMEOUT, Origin, Output, ParserSpec, Requires, SECONDS, ToolSpec},
    pa,
};
use crate::textpos::{Diagnostic, LineIndex, SourceFile};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    tool: Vec<Spanned<RawTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    description: String,
    binary: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    parser: Option<Spanned<String>>,
    format: Option<Spanned<pa::GenericSpec>>,
    output: Spanned<Output>,
    event_kind: Option<pa::EventKind>,
    stop_signal: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    stop_timeout: Option<Duration>,
    interval_args: Option<Spanned<Vec<String>>>,
    needs_args: Option<String>,
    #[serde(default)]
    rerun: bool,
    #[serde(default)]
    requires: Option<Spanned<Requires>>,
}

/// The result of a check: the value, or a diagnostic.
type Checked<T> = Result<T, Diagnostic>;

/// The file being checked.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
    lines: LineIndex<'a>,
}

impl Source<'_> {
    /// An error at `span` of the file.
    fn at(&self, span: Range<usize>, message: String) -> Diagnostic {
        let file = SourceFile {
            path: self.file.into(),
            text: self.text.to_owned(),
        };
        Diagnostic::at(&file, span, message)
    }
}

/// Parses and validates the entries of one manifest file; `file` names it
/// in errors.
pub(super) fn entries(text: &str, file: &str) -> Checked<Vec<ToolSpec>> {
    let src = Source {
        file,
        text,
        lines: LineIndex::new(text),
    };
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        match e.span() {
            Some(span) => src.at(span, message),
            None => Diagnostic::file(file, message),
        }
    })?;
    let mut tools = Vec::with_capacity(raw.tool.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for entry in raw.tool {
        let span = entry.span();
        let (line, _) = src.lines.line_col(span.start);
        let name = check_name(&src, &entry.get_ref().name, &mut seen, line)?;
        tools.push(tool(&src, entry.into_inner(), name, span, line)?);
    }
    Ok(tools)
}

/// One entry, field by field.
fn tool(
    src: &Source,
    t: RawTool,
    name: String,
    span: Range<usize>,
    line: usize,
) -> Checked<ToolSpec> {
    check_binary(src, &t.binary)?;
    let parser = parser(src, &t, &name, span.clone())?;
    let stop_signal = stop_signal(src, t.stop_signal.as_ref())?;
    let interval_args = interval_args(src, t.interval_args)?;
    check_rerun(src, t.rerun, &interval_args, &name, span)?;
    let event_kind = event_kind(&parser, t.event_kind);
    Ok(ToolSpec {
        name: name.into(),
        description: t.description,
        binary: t.binary.into_inner(),
        args: t.args,
        parser,
        output: *t.output.get_ref(),
        event_kind,
        stop_signal,
        stop_timeout: t.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
        interval_args,
        needs_args: t.needs_args,
        rerun: t.rerun,
        requires: requires(src, t.requires)?,
        origin: Origin {
            file: src.file.to_owned(),
            line,
        },
    })
}

/// `name`: `[a-z0-9_-]+`, once per file.
fn check_name(
    src: &Source,
    name: &Spanned<String>,
    seen: &mut HashMap<String, usize>,
    line: usize,
) -> Checked<String> {
    let n = name.get_ref();
    let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if n.is_empty() || !n.bytes().all(valid) {
        return Err(src.at(
            name.span(),
            format!("invalid tool name {n:?}: use lowercase letters, digits, `_` and `-`"),
        ));
    }
    if let Some(first) = seen.get(n) {
        return Err(src.at(
            name.span(),
            format!("duplicate tool `{n}`: already defined at line {first}"),
        ));
    }
    seen.insert(n.clone(), line);
    Ok(n.clone())
}

/// `binary`: not empty.
fn check_binary(src: &Source, binary: &Spanned<String>) -> Checked<()> {
    if binary.get_ref().trim().is_empty() {
        return Err(src.at(binary.span(), "`binary` is empty".into()));
    }
    Ok(())
}

/// `parser` or `format`: exactly one of them.
fn parser(src: &Source, t: &RawTool, name: &str, entry: Range<usize>) -> Checked<ParserSpec> {
    match (&t.parser, &t.format) {
        (Some(p), None) => builtin(src, p, t, name),
        (None, Some(f)) => generic(src, f, t, name),
        (Some(p), Some(_)) => Err(src.at(
            p.span(),
            format!("tool `{name}` has both `parser` and `format`: keep one"),
        )),
        (None, None) => Err(src.at(
            entry,
            format!(
                "tool `{name}` has no parser: set `parser` to a built-in parser \
                 or describe the output with a `[tool.format]` table"
            ),
        )),
    }
}

/// `parser`: a built-in parser; `event_kind` only with event output.
fn builtin(src: &Source, p: &Spanned<String>, t: &RawTool, name: &str) -> Checked<ParserSpec> {
    if pa::builtin(p.get_ref()).is_none() {
        return Err(src.at(
            p.span(),
            format!(
                "unknown parser `{}` for tool `{name}`: the built-in parsers are {}; \
                 for other tools describe the output with a `[tool.format]` table",
                p.get_ref(),
                pa::builtin_names().join(", ")
            ),
        ));
    }
    if t.event_kind.is_some() && *t.output.get_ref() != Output::Events {
        return Err(src.at(
            t.output.span(),
            format!("tool `{name}`: event_kind is only for output = \"events\""),
        ));
    }
    Ok(ParserSpec::Builtin(p.get_ref().clone()))
}

/// `format`: a generic format that fits, with standard field names, whose
/// output matches `output`; the event kind is set inside it.
fn generic(
    src: &Source,
    f: &Spanned<pa::GenericSpec>,
    t: &RawTool,
    name: &str,
) -> Checked<ParserSpec> {
    let span = f.span();
    let spec = f.get_ref();
    if let Err(e) = spec.validate() {
        return Err(src.at(span, format!("tool `{name}`: format does not fit: {e}")));
    }
    check_columns(src, spec, span.clone(), name)?;
    let made = Output::of_format(spec.format);
    if made != *t.output.get_ref() {
        return Err(src.at(
            t.output.span(),
            format!(
                "tool `{name}`: output = \"{}\" does not fit its format, which produces {}",
                t.output.get_ref().as_str(),
                made.as_str()
            ),
        ));
    }
    if t.event_kind.is_some() {
        return Err(src.at(
            span,
            format!("tool `{name}`: with a format, set the event kind as `format.kind`"),
        ));
    }
    Ok(ParserSpec::Generic(Box::new(spec.clone())))
}

/// `format.columns`: no misspelled standard field name.
fn check_columns(
    src: &Source,
    spec: &pa::GenericSpec,
    span: Range<usize>,
    name: &str,
) -> Checked<()> {
    for c in &spec.columns {
        if let Some(why) = columns::misspelled(&c.name) {
            let place = columns::locate(src.text, span.clone(), &c.name);
            return Err(src.at(place.unwrap_or(span), format!("tool `{name}`: {why}")));
        }
    }
    Ok(())
}

/// `stop_signal`: a signal name, with or without `SIG`; SIGINT by default.
fn stop_signal(src: &Source, s: Option<&Spanned<String>>) -> Checked<Signal> {
    let Some(s) = s else {
        return Ok(Signal::SIGINT);
    };
    let raw = s.get_ref().to_ascii_uppercase();
    let full = if raw.starts_with("SIG") {
        raw
    } else {
        format!("SIG{raw}")
    };
    Signal::from_str(&full)
        .map_err(|_| src.at(s.span(), format!("unknown stop_signal {:?}", s.get_ref())))
}

/// `interval_args`: none, or with the `{seconds}` placeholder.
fn interval_args(src: &Source, a: Option<Spanned<Vec<String>>>) -> Checked<Vec<String>> {
    let Some(a) = a else {
        return Ok(Vec::new());
    };
    if !a.get_ref().is_empty() && !a.get_ref().iter().any(|x| x.contains(SECONDS)) {
        return Err(src.at(
            a.span(),
            format!("interval_args must contain the placeholder {SECONDS}"),
        ));
    }
    Ok(a.into_inner())
}

/// `rerun`: only with `interval_args` (the run's duration).
fn check_rerun(
    src: &Source,
    rerun: bool,
    interval_args: &[String],
    name: &str,
    entry: Range<usize>,
) -> Checked<()> {
    if rerun && interval_args.is_empty() {
        return Err(src.at(
            entry,
            format!("tool `{name}`: rerun = true needs interval_args (the run's duration)"),
        ));
    }
    Ok(())
}

/// `requires`: tracepoints as `category/name`, BTF members as
/// `struct.field`.
fn requires(src: &Source, r: Option<Spanned<Requires>>) -> Checked<Requires> {
    let Some(r) = r else {
        return Ok(Requires::default());
    };
    let span = r.span();
    let r = r.into_inner();
    let bad_tracepoint =
        |tp: &&String| tp.split('/').count() != 2 || tp.split('/').any(str::is_empty);
    if let Some(bad) = r.tracepoints.iter().find(bad_tracepoint) {
        return Err(src.at(span, format!("tracepoint {bad:?} must be `category/name`")));
    }
    let bad_member = |m: &&String| {
        m.split_once('.')
            .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
    };
    if let Some(bad) = r.btf_members.iter().find(bad_member) {
        return Err(src.at(
            span,
            format!("btf_members entry {bad:?} must be `struct.field`"),
        ));
    }
    Ok(r)
}

/// What the events are: a generic event format's `kind`, else
/// `event_kind`.
fn event_kind(parser: &ParserSpec, event_kind: Option<pa::EventKind>) -> Option<pa::EventKind> {
    match parser {
        ParserSpec::Generic(g) if matches!(g.format, pa::Format::Columns | pa::Format::Fixed) => {
            Some(g.kind)
        }
        _ => event_kind,
    }
}
