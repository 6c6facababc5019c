//! `tools-manifest.toml`: the one place where a supervised tool is described.
//!
//! The shipped manifest is embedded in the binary; users add or replace
//! entries with `*.toml` files in the configured manifest directories. Loading
//! validates everything (unknown keys, parser, generic format, signal,
//! duplicates) and every error names the file, line and column.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr as _,
    sync::Arc,
    time::Duration,
};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{ToolsConfig, pa};

/// The shipped manifest, embedded so the single binary works anywhere.
pub const BUILTIN: &str = include_str!("../../../tools-manifest.toml");
/// How the embedded manifest is named in messages.
pub const BUILTIN_NAME: &str = "tools-manifest.toml (built in)";
/// The placeholder in `interval_args` replaced by the interval in seconds.
pub const SECONDS: &str = "{seconds}";

/// A manifest that cannot be used: file, line, column and what is wrong.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    /// The file (or [`BUILTIN_NAME`]).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (l, 0) => write!(f, "{}:{l}: {}", self.file, self.message),
            (l, c) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
        }
    }
}

/// What a tool's output is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// One line per event (execsnoop, opensnoop, tcplife, ...).
    Events,
    /// Log2 histogram blocks printed per interval (biolatency, runqlat, ...).
    Histograms,
    /// A top-style table printed per interval (syscount, softirqs, ...).
    Tables,
    /// Folded stacks printed at the end (offcputime, wakeuptime).
    Stacks,
}

impl Output {
    /// What a generic format produces.
    fn of_format(f: pa::Format) -> Output {
        match f {
            pa::Format::Columns | pa::Format::Fixed => Output::Events,
            pa::Format::Histogram => Output::Histograms,
            pa::Format::Table => Output::Tables,
            pa::Format::Folded => Output::Stacks,
        }
    }

    /// The TOML word.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Events => "events",
            Output::Histograms => "histograms",
            Output::Tables => "tables",
            Output::Stacks => "stacks",
        }
    }
}

/// What a tool needs from the kernel; checked by [`super::avail`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Requires {
    /// Kernel BTF (/sys/kernel/btf/vmlinux), for CO-RE and tp_btf programs.
    pub btf: bool,
    /// Tracepoints as `category/name` (tracefs `events/<category>/<name>`),
    /// including those attached as raw or BTF tracepoints.
    pub tracepoints: Vec<String>,
    /// Kernel functions attached with kprobes only.
    pub kprobes: Vec<String>,
    /// Kernel functions attached with fentry/fexit only.
    pub fentry: Vec<String>,
    /// Kernel functions attached with fentry where it works, else kprobes.
    pub fentry_or_kprobes: Vec<String>,
    /// Symbols that must be in /proc/kallsyms.
    pub kernel_symbols: Vec<String>,
    /// `struct.field` the BPF programs read (CO-RE): must exist in kernel BTF.
    pub btf_members: Vec<String>,
    /// kprobes on functions named on the command line (funclatency, ksnoop).
    pub dynamic_kprobes: bool,
    /// Uprobes (user-space function tracing).
    pub uprobes: bool,
    /// perf PMUs (`/sys/bus/event_source/devices/<pmu>`), e.g. `cpu` for
    /// hardware counters.
    pub pmus: Vec<String>,
    /// Files that must exist (e.g. cpufreq's sysfs).
    pub paths: Vec<String>,
}

/// How a tool's output is parsed.
#[derive(Debug, Clone)]
pub enum ParserSpec {
    /// A parser compiled into eunomia, by name.
    Builtin(String),
    /// A generic, manifest-described format.
    Generic(Box<pa::GenericSpec>),
}

/// Where an entry comes from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file (or [`BUILTIN_NAME`]).
    pub file: String,
    /// 1-based line of the entry's `[[tool]]` table.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One validated manifest entry.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Unique name (`[a-z0-9_-]+`).
    pub name: Arc<str>,
    /// One line for `tools list`.
    pub description: String,
    /// Binary name (looked up) or path.
    pub binary: String,
    /// Arguments after the binary, before the interval and user arguments.
    pub args: Vec<String>,
    /// How stdout is parsed.
    pub parser: ParserSpec,
    /// What the output is made of.
    pub output: Output,
    /// What the events are (exec, open, ...), for event tools.
    pub event_kind: Option<pa::EventKind>,
    /// Signal that asks the tool to stop (and print its last block).
    pub stop_signal: Signal,
    /// How long to wait for the tool's final output after `stop_signal`.
    pub stop_timeout: Duration,
    /// Arguments that set the printing interval; `{seconds}` is replaced.
    pub interval_args: Vec<String>,
    /// Arguments the user must give (e.g. `FUNCTION`); the tool does not
    /// start without extra arguments.
    pub needs_args: Option<String>,
    /// The tool prints one report and exits after the interval: a clean exit
    /// starts the next run at once and is not a restart.
    pub rerun: bool,
    /// What the kernel must offer.
    pub requires: Requires,
    /// Where it is defined.
    pub origin: Origin,
}

impl ToolSpec {
    /// The arguments to run with (after the binary): `args`, the interval
    /// arguments for a periodic tool, then `extra`.
    pub fn argv(&self, interval: Duration, extra: &[String]) -> Vec<String> {
        let secs = interval.as_secs_f64().ceil().max(1.0) as u64;
        let mut argv = self.args.clone();
        argv.extend(
            self.interval_args
                .iter()
                .map(|a| a.replace(SECONDS, &secs.to_string())),
        );
        argv.extend(extra.iter().cloned());
        argv
    }

    /// A fresh parser for one run of the tool.
    pub fn new_parser(&self) -> Box<dyn pa::ToolParser> {
        match &self.parser {
            ParserSpec::Builtin(name) => pa::builtin(name)
                .unwrap_or_else(|| unreachable!("parser {name} was validated on load")),
            ParserSpec::Generic(spec) => spec.build_named(&self.name).unwrap_or_else(|e| {
                unreachable!("format of {} was validated on load: {e}", self.name)
            }),
        }
    }

    /// `builtin:<name>` or `generic`.
    pub fn parser_label(&self) -> String {
        match &self.parser {
            ParserSpec::Builtin(n) => format!("builtin:{n}"),
            ParserSpec::Generic(_) => "generic".into(),
        }
    }
}

/// All tools, shipped entries first, user entries merged over them.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    tools: Vec<ToolSpec>,
    /// Position of each name in `tools`.
    by_name: HashMap<Arc<str>, usize>,
    /// Files read, in order (for messages).
    pub files: Vec<String>,
}

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

/// Default for `stop_timeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(3);

impl Manifest {
    /// The manifest embedded in the binary.
    pub fn builtin() -> Manifest {
        Manifest::parse(BUILTIN, BUILTIN_NAME).expect("the built-in manifest is valid")
    }

    /// Loads the manifest `config` describes: the embedded one (or
    /// `config.manifest`), then every `*.toml` of `config.manifest_dirs`
    /// in name order. Missing directories are skipped.
    pub fn load(config: &ToolsConfig) -> Result<Manifest, ManifestError> {
        let mut manifest = match &config.manifest {
            Some(path) => {
                let text = read(path)?;
                Manifest::parse(&text, &path.display().to_string())?
            }
            None => Manifest::parse(BUILTIN, BUILTIN_NAME)?,
        };
        let mut user: HashMap<Arc<str>, Origin> = HashMap::new();
        for dir in &config.manifest_dirs {
            trusted(dir)?;
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ManifestError {
                        file: dir.display().to_string(),
                        line: 0,
                        col: 0,
                        message: format!("cannot read manifest directory: {e}"),
                    });
                }
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect();
            files.sort();
            for file in files {
                let text = read(&file)?;
                let extra = Manifest::parse(&text, &file.display().to_string())?;
                for tool in extra.tools {
                    if let Some(first) = user.get(&tool.name) {
                        return Err(ManifestError {
                            file: tool.origin.file.clone(),
                            line: tool.origin.line,
                            col: 0,
                            message: format!(
                                "duplicate tool `{}`: already defined at {first}",
                                tool.name
                            ),
                        });
                    }
                    user.insert(tool.name.clone(), tool.origin.clone());
                    manifest.insert_or_replace(tool);
                }
                manifest.files.extend(extra.files);
            }
        }
        Ok(manifest)
    }

    /// Parses and validates one manifest file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        let lines = crate::textpos::LineIndex::new(text);
        let err_at = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, col) = span.map_or((0, 0), |s| lines.line_col(s.start));
            ManifestError {
                file: file.to_owned(),
                line,
                col,
                message,
            }
        };
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| err_at(e.span(), e.message().trim_end().to_owned()))?;
        let mut tools: Vec<ToolSpec> = Vec::with_capacity(raw.tool.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for entry in raw.tool {
            let span = entry.span();
            let (line, _) = lines.line_col(span.start);
            let t = entry.into_inner();
            let name = t.name.get_ref().clone();
            let at = |s: std::ops::Range<usize>, m: String| err_at(Some(s), m);
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(at(
                    t.name.span(),
                    format!(
                        "invalid tool name {name:?}: use lowercase letters, digits, `_` and `-`"
                    ),
                ));
            }
            if let Some(first) = seen.get(&name) {
                return Err(at(
                    t.name.span(),
                    format!("duplicate tool `{name}`: already defined at line {first}"),
                ));
            }
            seen.insert(name.clone(), line);
            if t.binary.get_ref().trim().is_empty() {
                return Err(at(t.binary.span(), "`binary` is empty".into()));
            }
            let parser = match (t.parser, t.format) {
                (Some(p), None) => {
                    if pa::builtin(p.get_ref()).is_none() {
                        return Err(at(
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
                        return Err(at(
                            t.output.span(),
                            format!("tool `{name}`: event_kind is only for output = \"events\""),
                        ));
                    }
                    ParserSpec::Builtin(p.into_inner())
                }
                (None, Some(f)) => {
                    let span = f.span();
                    let spec = f.into_inner();
                    if let Err(e) = spec.validate() {
                        return Err(at(span, format!("tool `{name}`: format does not fit: {e}")));
                    }
                    for c in &spec.columns {
                        if let Some(why) = super::columns::misspelled(&c.name) {
                            let place = super::columns::locate(text, span.clone(), &c.name);
                            return Err(at(place.unwrap_or(span), format!("tool `{name}`: {why}")));
                        }
                    }
                    let made = Output::of_format(spec.format);
                    if made != *t.output.get_ref() {
                        return Err(at(
                            t.output.span(),
                            format!(
                                "tool `{name}`: output = \"{}\" does not fit its format, which produces {}",
                                t.output.get_ref().as_str(),
                                made.as_str()
                            ),
                        ));
                    }
                    if t.event_kind.is_some() {
                        return Err(at(
                            span,
                            format!(
                                "tool `{name}`: with a format, set the event kind as `format.kind`"
                            ),
                        ));
                    }
                    ParserSpec::Generic(Box::new(spec))
                }
                (Some(p), Some(_)) => {
                    return Err(at(
                        p.span(),
                        format!("tool `{name}` has both `parser` and `format`: keep one"),
                    ));
                }
                (None, None) => {
                    return Err(at(
                        span,
                        format!(
                            "tool `{name}` has no parser: set `parser` to a built-in parser \
                             or describe the output with a `[tool.format]` table"
                        ),
                    ));
                }
            };
            let stop_signal = match t.stop_signal {
                None => Signal::SIGINT,
                Some(s) => {
                    let raw = s.get_ref().to_ascii_uppercase();
                    let full = if raw.starts_with("SIG") {
                        raw
                    } else {
                        format!("SIG{raw}")
                    };
                    Signal::from_str(&full).map_err(|_| {
                        at(s.span(), format!("unknown stop_signal {:?}", s.get_ref()))
                    })?
                }
            };
            let interval_args = match t.interval_args {
                None => Vec::new(),
                Some(a) => {
                    if !a.get_ref().is_empty() && !a.get_ref().iter().any(|x| x.contains(SECONDS)) {
                        return Err(at(
                            a.span(),
                            format!("interval_args must contain the placeholder {SECONDS}"),
                        ));
                    }
                    a.into_inner()
                }
            };
            if t.rerun && interval_args.is_empty() {
                return Err(at(
                    span.clone(),
                    format!("tool `{name}`: rerun = true needs interval_args (the run's duration)"),
                ));
            }
            let requires =
                match t.requires {
                    None => Requires::default(),
                    Some(r) => {
                        let span = r.span();
                        let r = r.into_inner();
                        if let Some(bad) = r.tracepoints.iter().find(|tp| {
                            tp.split('/').count() != 2 || tp.split('/').any(str::is_empty)
                        }) {
                            return Err(at(
                                span,
                                format!("tracepoint {bad:?} must be `category/name`"),
                            ));
                        }
                        if let Some(bad) = r.btf_members.iter().find(|m| {
                            m.split_once('.')
                                .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
                        }) {
                            return Err(at(
                                span,
                                format!("btf_members entry {bad:?} must be `struct.field`"),
                            ));
                        }
                        r
                    }
                };
            let event_kind = match &parser {
                ParserSpec::Generic(g)
                    if matches!(g.format, pa::Format::Columns | pa::Format::Fixed) =>
                {
                    Some(g.kind)
                }
                _ => t.event_kind,
            };
            tools.push(ToolSpec {
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
                requires,
                origin: Origin {
                    file: file.to_owned(),
                    line,
                },
            });
        }
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Manifest {
            tools,
            by_name,
            files: vec![file.to_owned()],
        })
    }

    fn insert_or_replace(&mut self, tool: ToolSpec) {
        match self.by_name.get(&tool.name) {
            Some(&i) => {
                tracing::debug!(tool = %tool.name, from = %tool.origin, "manifest entry replaced");
                self.tools[i] = tool;
            }
            None => {
                self.by_name.insert(tool.name.clone(), self.tools.len());
                self.tools.push(tool);
            }
        }
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Every tool, in manifest order.
    pub fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }

    /// Every name, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| &*t.name).collect()
    }
}

/// Refuses a manifest file or directory others than root could change.
fn trusted(path: &Path) -> Result<(), ManifestError> {
    crate::trust::check(path).map_err(|e| ManifestError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        message: e.advice(),
    })
}

fn read(path: &Path) -> Result<String, ManifestError> {
    trusted(path)?;
    std::fs::read_to_string(path).map_err(|e| ManifestError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        message: format!("cannot read: {e}"),
    })
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
