//! Generic formats a manifest entry can declare without Rust code:
//! [`GenericSpec`], validated by [`GenericSpec::validate`] and turned into a
//! parser by [`GenericSpec::build`].
//!
//! In TOML (e.g. inside a `tools-manifest.toml` entry):
//!
//! ```toml
//! format = "fixed"          # columns | fixed | histogram | table | folded
//! kind = "open"             # event kind (columns/fixed), default "generic"
//! header = "PID"            # a line starting with this is the header (skipped / starts a table)
//! skip = ["WARNING"]        # more prefixes of lines to ignore
//! columns = [
//!   { name = "proc.pid",  type = "int",  width = 7 },
//!   { name = "proc.comm", type = "str",  width = 17 },
//!   { name = "file.path", type = "rest" },
//! ]
//! ```
//!
//! Formats:
//! - `columns`: whitespace-separated columns; a last column of type `rest`
//!   takes the rest of the line (spaces included).
//! - `fixed`: fixed-width columns (each `width` bytes including the
//!   separating blanks, values trimmed), for text columns such as COMM that
//!   may contain spaces; the last column may omit its width (rest of line).
//! - `histogram`: libbpf-tools log2 histogram blocks (no columns).
//! - `table`: blocks of whitespace-separated rows, started by the `header`
//!   line (or implicitly when there is no header) and ended by a blank or
//!   time-stamp line.
//! - `folded`: `frame;frame;frame count` lines (no columns).
//!
//! Column types: `str`, `rest`, `int`, `hex`, `float`, `ip`, `clock`
//! (`HH:MM:SS`, becomes the record's tool time), `seconds` (relative
//! seconds, likewise), `duration_ns`, `duration_us`, `duration_ms`,
//! `duration_s` (a number in that unit, stored as a duration), `skip`.
//! Columns named `proc.pid`, `proc.tid`, `proc.ppid`, `proc.uid` (type
//! `int`) and `proc.comm` (`str` or `rest`) fill the event's process members.

use std::sync::Arc;

use serde::Deserialize;

use crate::ToolParser;
use crate::error::{ParseError, SpecError};
use crate::fields;
use crate::records::{Event, EventKind, Record, ToolTime, Value};
use crate::stacks::FoldedTool;
use crate::summary::{NoTable, SummaryTool, TableSyntax};
use crate::text::{self, Res, chomp, is_noise, trim, trim_end, ws0};

/// The output format of a generic tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Whitespace-separated columns, one event a line.
    Columns,
    /// Fixed-width columns, one event a line.
    Fixed,
    /// log2 histogram blocks.
    Histogram,
    /// Periodic tables.
    Table,
    /// Folded stacks.
    Folded,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Columns => "columns",
            Format::Fixed => "fixed",
            Format::Histogram => "histogram",
            Format::Table => "table",
            Format::Folded => "folded",
        }
    }
}

/// One column of a `columns`, `fixed` or `table` spec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Field name (see [`crate::fields`]); any valid name is accepted.
    pub name: String,
    /// Column type (see the module docs).
    #[serde(rename = "type")]
    pub ty: String,
    /// Width in bytes including separators (format `fixed` only).
    #[serde(default)]
    pub width: Option<usize>,
}

/// A tool output format described in data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSpec {
    /// The format.
    pub format: Format,
    /// Event kind for `columns`/`fixed`; `generic` when absent.
    #[serde(default = "generic_kind")]
    pub kind: EventKind,
    /// The columns (`columns`, `fixed`, `table`).
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    /// Prefix of the header line.
    #[serde(default)]
    pub header: Option<String>,
    /// Prefixes of further lines to ignore.
    #[serde(default)]
    pub skip: Vec<String>,
}

fn generic_kind() -> EventKind {
    EventKind::Generic
}

const TYPES: &str = "str, rest, int, hex, float, ip, clock, seconds, duration_ns, duration_us, duration_ms, duration_s, skip";

/// A validated column type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ColType {
    Str,
    Rest,
    Int,
    Hex,
    Float,
    Ip,
    Clock,
    Seconds,
    /// ns per unit.
    Duration(f64),
    Skip,
}

impl ColType {
    fn parse(s: &str) -> Option<ColType> {
        Some(match s {
            "str" => ColType::Str,
            "rest" => ColType::Rest,
            "int" => ColType::Int,
            "hex" => ColType::Hex,
            "float" => ColType::Float,
            "ip" => ColType::Ip,
            "clock" => ColType::Clock,
            "seconds" => ColType::Seconds,
            "duration_ns" => ColType::Duration(1.0),
            "duration_us" => ColType::Duration(1e3),
            "duration_ms" => ColType::Duration(1e6),
            "duration_s" => ColType::Duration(1e9),
            "skip" => ColType::Skip,
            _ => return None,
        })
    }

    fn is_time(self) -> bool {
        matches!(self, ColType::Clock | ColType::Seconds)
    }
}

/// Where a column's value goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Pid,
    Tid,
    Ppid,
    Uid,
    Comm,
    Time,
    Skip,
    Field(&'static str),
}

/// A validated column.
#[derive(Debug, Clone)]
struct Col {
    name: &'static str,
    ty: ColType,
    width: Option<usize>,
    target: Target,
}

impl GenericSpec {
    /// Checks that the spec is coherent: known types, widths where (and only
    /// where) the format uses them, `rest` last, valid unique names,
    /// `proc.*` columns of fitting types, no columns for `histogram`/`folded`.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.columns().map(|_| ())
    }

    /// Validates and builds a parser; records carry the tool name `generic`.
    pub fn build(&self) -> Result<Box<dyn ToolParser>, SpecError> {
        self.build_named("generic")
    }

    /// Validates and builds a parser whose records carry the tool name `tool`.
    pub fn build_named(&self, tool: &str) -> Result<Box<dyn ToolParser>, SpecError> {
        let cols = self.columns()?;
        let inner: Box<dyn ToolParser> = match self.format {
            Format::Columns | Format::Fixed => Box::new(GenericEvents {
                tool: tool.into(),
                kind: self.kind,
                fixed: self.format == Format::Fixed,
                cols,
                header: self.header.clone(),
            }),
            Format::Histogram => Box::new(SummaryTool::new(tool, NoTable)),
            Format::Table => Box::new(SummaryTool::new(
                tool,
                GenericTable {
                    cols,
                    header: self.header.clone(),
                },
            )),
            Format::Folded => Box::new(FoldedTool::new(tool)),
        };
        if self.skip.is_empty() {
            return Ok(inner);
        }
        Ok(Box::new(Skipping {
            prefixes: self.skip.clone(),
            inner,
        }))
    }

    fn format_err(&self, why: &'static str) -> SpecError {
        SpecError::Format {
            format: self.format.name(),
            why,
        }
    }

    /// Validates the columns.
    fn columns(&self) -> Result<Vec<Col>, SpecError> {
        match self.format {
            Format::Histogram | Format::Folded => {
                if !self.columns.is_empty() {
                    return Err(self.format_err("takes no columns"));
                }
                return Ok(Vec::new());
            }
            _ if self.columns.is_empty() => {
                return Err(self.format_err("needs at least one column"));
            }
            _ => {}
        }
        let mut out: Vec<Col> = Vec::with_capacity(self.columns.len());
        let last = self.columns.len() - 1;
        for (idx, c) in self.columns.iter().enumerate() {
            let col = self.column(c, idx == last)?;
            if col.target != Target::Skip && out.iter().any(|o| o.name == col.name) {
                return Err(bad_name(c, "used twice"));
            }
            out.push(col);
        }
        if out.iter().filter(|c| c.ty.is_time()).count() > 1 {
            return Err(self.format_err("at most one clock/seconds column"));
        }
        if self.format == Format::Table
            && out
                .iter()
                .all(|c| matches!(c.target, Target::Skip | Target::Time))
        {
            return Err(self.format_err("a table needs a value column"));
        }
        Ok(out)
    }

    fn column(&self, c: &ColumnSpec, is_last: bool) -> Result<Col, SpecError> {
        let ty = ColType::parse(&c.ty).ok_or_else(|| SpecError::UnknownType {
            column: c.name.clone(),
            ty: c.ty.clone(),
            expected: TYPES,
        })?;
        if !fields::is_valid_name(&c.name) {
            return Err(bad_name(
                c,
                "not a valid field name (lowercase letters, digits, `_`, `.`)",
            ));
        }
        if ty == ColType::Rest && !is_last {
            return Err(SpecError::RestNotLast {
                column: c.name.clone(),
            });
        }
        self.check_width(c, is_last)?;
        let target = target(c, ty)?;
        Ok(Col {
            name: fields::intern(&c.name),
            ty,
            width: c.width,
            target,
        })
    }

    fn check_width(&self, c: &ColumnSpec, is_last: bool) -> Result<(), SpecError> {
        match (self.format, c.width) {
            (Format::Fixed, None) if !is_last => Err(SpecError::MissingWidth {
                column: c.name.clone(),
            }),
            (Format::Fixed, Some(0)) => Err(SpecError::BadWidth {
                column: c.name.clone(),
                why: "width must be at least 1",
            }),
            (Format::Fixed, _) => Ok(()),
            (_, Some(_)) => Err(SpecError::BadWidth {
                column: c.name.clone(),
                why: "width applies to format `fixed` only",
            }),
            (_, None) => Ok(()),
        }
    }
}

fn bad_name(c: &ColumnSpec, why: &'static str) -> SpecError {
    SpecError::BadName {
        column: c.name.clone(),
        why,
    }
}

/// Where column `c` of type `ty` goes, checking `proc.*` types.
fn target(c: &ColumnSpec, ty: ColType) -> Result<Target, SpecError> {
    let need = |ok: bool, expected| {
        if ok {
            Ok(())
        } else {
            Err(SpecError::ProcType {
                column: c.name.clone(),
                expected,
            })
        }
    };
    let t = match c.name.as_str() {
        _ if ty == ColType::Skip => Target::Skip,
        _ if ty.is_time() => Target::Time,
        fields::PROC_PID => Target::Pid,
        fields::PROC_TID => Target::Tid,
        fields::PROC_PPID => Target::Ppid,
        fields::PROC_UID => Target::Uid,
        fields::PROC_COMM => {
            need(matches!(ty, ColType::Str | ColType::Rest), "str or rest")?;
            return Ok(Target::Comm);
        }
        n => return Ok(Target::Field(fields::intern(n))),
    };
    if matches!(t, Target::Pid | Target::Tid | Target::Ppid | Target::Uid) {
        need(ty == ColType::Int, "int")?;
    }
    Ok(t)
}

/// Splits `line` into one text slice per column.
fn split<'a>(
    line: &'a [u8],
    cols: &[Col],
    fixed: bool,
    out: &mut Vec<&'a [u8]>,
) -> Result<(), &'static str> {
    out.clear();
    let mut i = line;
    for c in cols {
        let text = if fixed {
            match c.width {
                Some(w) if c.ty != ColType::Rest => {
                    let n = w.min(i.len());
                    let (t, r) = i.split_at(n);
                    i = r;
                    trim(t)
                }
                _ => std::mem::take(&mut i),
            }
        } else if c.ty == ColType::Rest {
            trim_end(ws0(std::mem::take(&mut i)))
        } else {
            let (r, t) = text::token(ws0(i)).map_err(|_| "missing column")?;
            i = r;
            t
        };
        let text = trim(text);
        if text.is_empty() && c.ty != ColType::Rest && c.ty != ColType::Str {
            return Err("missing column");
        }
        out.push(text);
    }
    if !fixed && !trim(i).is_empty() {
        return Err("more columns than the spec declares");
    }
    Ok(())
}

/// Converts a column's text by its type (None for skip/time columns).
fn convert(ty: ColType, t: &[u8]) -> Result<Option<Value>, &'static str> {
    let whole = |r: Res<'_, i64>| match r {
        Ok(([], v)) => Ok(v),
        _ => Err("expected an integer"),
    };
    Ok(Some(match ty {
        ColType::Str | ColType::Rest => Value::str_lossy(t),
        ColType::Int => Value::Int(whole(text::int(t))?),
        ColType::Hex => {
            let t = t.strip_prefix(b"0x").unwrap_or(t);
            let s = std::str::from_utf8(t).map_err(|_| "expected a hex number")?;
            let v = u64::from_str_radix(s, 16).map_err(|_| "expected a hex number")?;
            Value::Int(v as i64)
        }
        ColType::Float => match text::decimal(t) {
            Ok(([], v)) => Value::Float(v),
            _ => return Err("expected a number"),
        },
        ColType::Ip => {
            let s = std::str::from_utf8(t).map_err(|_| "expected an IP address")?;
            Value::Ip(s.parse().map_err(|_| "expected an IP address")?)
        }
        ColType::Duration(unit) => match text::decimal(t) {
            Ok(([], v)) => Value::Duration(text::to_ns(v, unit)),
            _ => return Err("expected a duration"),
        },
        ColType::Clock | ColType::Seconds | ColType::Skip => return Ok(None),
    }))
}

/// The tool time from a clock/seconds column.
fn tool_time(ty: ColType, t: &[u8]) -> Result<ToolTime, &'static str> {
    let r = match ty {
        ColType::Clock => text::clock(t),
        _ => text::rel_time(t),
    };
    match r {
        Ok(([], v)) => Ok(v),
        _ => Err("expected a time"),
    }
}

fn id_of(v: Option<Value>) -> Result<u32, &'static str> {
    match v {
        Some(Value::Int(i)) => u32::try_from(i).map_err(|_| "id out of range"),
        _ => Err("expected an id"),
    }
}

/// Parser of the `columns` and `fixed` formats.
struct GenericEvents {
    tool: Arc<str>,
    kind: EventKind,
    fixed: bool,
    cols: Vec<Col>,
    header: Option<String>,
}

impl GenericEvents {
    fn event(&self, line: &[u8]) -> Result<Event, &'static str> {
        let mut texts = Vec::with_capacity(self.cols.len());
        split(line, &self.cols, self.fixed, &mut texts)?;
        let mut ev = Event::new(self.tool.clone(), self.kind);
        for (c, t) in self.cols.iter().zip(texts) {
            match c.target {
                Target::Skip => {}
                Target::Time => ev.tool_time = Some(tool_time(c.ty, t)?),
                Target::Pid => ev.pid = Some(id_of(convert(c.ty, t)?)?),
                Target::Tid => ev.tid = Some(id_of(convert(c.ty, t)?)?),
                Target::Ppid => ev.ppid = Some(id_of(convert(c.ty, t)?)?),
                Target::Uid => ev.uid = Some(id_of(convert(c.ty, t)?)?),
                Target::Comm => ev.comm = Some(crate::records::Comm::from_utf8_lossy(t)),
                Target::Field(name) => {
                    if let Some(v) = convert(c.ty, t)? {
                        ev.push(name, v);
                    }
                }
            }
        }
        Ok(ev)
    }
}

impl ToolParser for GenericEvents {
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        let line = chomp(line);
        if is_noise(line) || starts_with_str(line, self.header.as_deref()) {
            return Ok(());
        }
        let ev = self
            .event(line)
            .map_err(|what| ParseError::new(&self.tool, what, line))?;
        out.push(Record::Event(ev));
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Record>) {}

    fn tool(&self) -> &str {
        &self.tool
    }
}

fn starts_with_str(line: &[u8], prefix: Option<&str>) -> bool {
    prefix.is_some_and(|p| ws0(line).starts_with(p.as_bytes()))
}

/// Table syntax of the `table` format.
struct GenericTable {
    cols: Vec<Col>,
    header: Option<String>,
}

impl GenericTable {
    fn names(&self) -> Vec<&'static str> {
        self.cols
            .iter()
            .filter(|c| !matches!(c.target, Target::Skip | Target::Time))
            .map(|c| c.name)
            .collect()
    }
}

impl TableSyntax for GenericTable {
    type Mode = ();

    fn header(&self, line: &[u8]) -> Option<(Vec<&'static str>, ())> {
        starts_with_str(line, self.header.as_deref()).then(|| (self.names(), ()))
    }

    fn implicit(&self) -> Option<(Vec<&'static str>, ())> {
        self.header.is_none().then(|| (self.names(), ()))
    }

    fn row<'a>(&self, line: &'a [u8], _: &()) -> Res<'a, (Vec<Value>, Option<ToolTime>)> {
        let mut texts = Vec::with_capacity(self.cols.len());
        split(line, &self.cols, false, &mut texts).or_else(text::fail)?;
        let mut row = Vec::with_capacity(self.cols.len());
        let mut time = None;
        for (c, t) in self.cols.iter().zip(texts) {
            match c.target {
                Target::Skip => {}
                Target::Time => time = Some(tool_time(c.ty, t).or_else(text::fail)?),
                _ => {
                    if let Some(v) = convert(c.ty, t).or_else(text::fail)? {
                        row.push(v);
                    }
                }
            }
        }
        Ok((&line[line.len()..], (row, time)))
    }
}

/// Drops lines starting with any of `prefixes`, passes the rest on.
struct Skipping {
    prefixes: Vec<String>,
    inner: Box<dyn ToolParser>,
}

impl ToolParser for Skipping {
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        let t = ws0(line);
        if self.prefixes.iter().any(|p| t.starts_with(p.as_bytes())) {
            return Ok(());
        }
        self.inner.feed(line, out)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.inner.finish(out);
    }

    fn tool(&self) -> &str {
        self.inner.tool()
    }
}
