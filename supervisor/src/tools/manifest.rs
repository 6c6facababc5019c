//! `tools-manifest.toml`: the one place where a supervised tool is described.
//!
//! The shipped manifest is embedded in the binary; users add or replace
//! entries with `*.toml` files in the configured manifest directories. Loading
//! validates everything (unknown keys, parser, generic format, signal,
//! duplicates; [`super::manifest_check`], one function per field) and every
//! error names the file, line and column.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::{ToolsConfig, pa};
use crate::textpos::{Diagnostic, SourceFile};

/// The shipped manifest, embedded so the single binary works anywhere.
pub(crate) const BUILTIN: &str = include_str!("../../../tools-manifest.toml");
/// How the embedded manifest is named in messages.
pub(crate) const BUILTIN_NAME: &str = "tools-manifest.toml (built in)";
/// The placeholder in `interval_args` replaced by the interval in seconds.
pub(crate) const SECONDS: &str = "{seconds}";

/// A manifest that cannot be used: file, line, column, what is wrong and
/// the offending line, underlined.
pub type ManifestError = Diagnostic;

/// What a tool's output is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Output {
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
    pub(super) fn of_format(f: pa::Format) -> Output {
        match f {
            pa::Format::Columns | pa::Format::Fixed => Output::Events,
            pa::Format::Histogram => Output::Histograms,
            pa::Format::Table => Output::Tables,
            pa::Format::Folded => Output::Stacks,
        }
    }

    /// The TOML word.
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) struct Requires {
    /// Kernel BTF (/sys/kernel/btf/vmlinux), for CO-RE and tp_btf programs.
    pub(crate) btf: bool,
    /// Tracepoints as `category/name` (tracefs `events/<category>/<name>`),
    /// including those attached as raw or BTF tracepoints.
    pub(crate) tracepoints: Vec<String>,
    /// Kernel functions attached with kprobes only.
    pub(crate) kprobes: Vec<String>,
    /// Kernel functions attached with fentry/fexit only.
    pub(crate) fentry: Vec<String>,
    /// Kernel functions attached with fentry where it works, else kprobes.
    pub(crate) fentry_or_kprobes: Vec<String>,
    /// Symbols that must be in /proc/kallsyms.
    pub(crate) kernel_symbols: Vec<String>,
    /// `struct.field` the BPF programs read (CO-RE): must exist in kernel BTF.
    pub(crate) btf_members: Vec<String>,
    /// kprobes on functions named on the command line (funclatency, ksnoop).
    pub(crate) dynamic_kprobes: bool,
    /// Uprobes (user-space function tracing).
    pub(crate) uprobes: bool,
    /// perf PMUs (`/sys/bus/event_source/devices/<pmu>`), e.g. `cpu` for
    /// hardware counters.
    pub(crate) pmus: Vec<String>,
    /// Files that must exist (e.g. cpufreq's sysfs).
    pub(crate) paths: Vec<String>,
}

/// How a tool's output is parsed.
#[derive(Debug, Clone)]
pub(crate) enum ParserSpec {
    /// A parser compiled into eunomia, by name.
    Builtin(String),
    /// A generic, manifest-described format.
    Generic(Box<pa::GenericSpec>),
}

/// Where an entry comes from.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The file (or [`BUILTIN_NAME`]).
    pub(crate) file: String,
    /// 1-based line of the entry's `[[tool]]` table.
    pub(crate) line: usize,
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
    pub(crate) name: Arc<str>,
    /// One line for `tools list`.
    pub(crate) description: String,
    /// Binary name (looked up) or path.
    pub(crate) binary: String,
    /// Arguments after the binary, before the interval and user arguments.
    pub(crate) args: Vec<String>,
    /// How stdout is parsed.
    pub(crate) parser: ParserSpec,
    /// What the output is made of.
    pub(crate) output: Output,
    /// What the events are (exec, open, ...), for event tools.
    pub(crate) event_kind: Option<pa::EventKind>,
    /// Signal that asks the tool to stop (and print its last block).
    pub(crate) stop_signal: Signal,
    /// How long to wait for the tool's final output after `stop_signal`.
    pub(crate) stop_timeout: Duration,
    /// Arguments that set the printing interval; `{seconds}` is replaced.
    pub(crate) interval_args: Vec<String>,
    /// Arguments the user must give (e.g. `FUNCTION`); the tool does not
    /// start without extra arguments.
    pub(crate) needs_args: Option<String>,
    /// The tool prints one report and exits after the interval: a clean exit
    /// starts the next run at once and is not a restart.
    pub(crate) rerun: bool,
    /// What the kernel must offer.
    pub(crate) requires: Requires,
    /// Where it is defined.
    pub(crate) origin: Origin,
}

impl ToolSpec {
    /// The arguments to run with (after the binary): `args`, the interval
    /// arguments for a periodic tool, then `extra`.
    pub(crate) fn argv(&self, interval: Duration, extra: &[String]) -> Vec<String> {
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
    pub(crate) fn new_parser(&self) -> Box<dyn pa::ToolParser> {
        match &self.parser {
            ParserSpec::Builtin(name) => pa::builtin(name)
                .unwrap_or_else(|| unreachable!("parser {name} was validated on load")),
            ParserSpec::Generic(spec) => spec.build_named(&self.name).unwrap_or_else(|e| {
                unreachable!("format of {} was validated on load: {e}", self.name)
            }),
        }
    }

    /// `builtin:<name>` or `generic`.
    pub(crate) fn parser_label(&self) -> String {
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
    pub(crate) files: Vec<String>,
}

/// Default for `stop_timeout`.
pub(crate) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(3);

impl Manifest {
    /// The manifest embedded in the binary.
    pub(crate) fn builtin() -> Manifest {
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
                    return Err(Diagnostic::file(
                        dir,
                        format!("cannot read manifest directory: {e}"),
                    ));
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
                        let message =
                            format!("duplicate tool `{}`: already defined at {first}", tool.name);
                        return Err(at_line(&file, text, tool.origin.line, message));
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
    pub(crate) fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        let tools = super::manifest_check::entries(text, file)?;
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
    pub(crate) fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Every tool, in manifest order.
    pub(crate) fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }
}

/// Refuses a manifest file or directory others than root could change.
fn trusted(path: &Path) -> Result<(), ManifestError> {
    crate::trust::check(path).map_err(|e| Diagnostic::file(path, e.advice()))
}

fn read(path: &Path) -> Result<String, ManifestError> {
    trusted(path)?;
    std::fs::read_to_string(path).map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))
}

/// An error at the start of 1-based `line` of `text`, the file at `path`.
fn at_line(path: &Path, text: String, line: usize, message: String) -> Diagnostic {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let file = SourceFile {
        path: path.to_owned(),
        text,
    };
    Diagnostic::at(&file, start..start, message)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
