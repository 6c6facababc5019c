//! The agent's configuration file (TOML, default `/etc/eunomia/eunomia.toml`).
//! Every section denies unknown keys; errors name the file, line and column.
//! Without a file the built-in defaults apply, so `eunomia run` works as is.
//! [`otel_env`] applies the standard `OTEL_*` environment variables on top.

pub(crate) mod otel_env;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    aggregate::AggregateConfig, cgroups::StatsSettings, enrich::EnrichConfig,
    hotpath::HotpathConfig, logs::LogsConfig, rules::RulesConfig, sinks::SinksConfig,
    tools::ToolsConfig,
};

/// Loads and checks the manifest `[tools]` names (`tools::load_checked`),
/// then declares its generic tools' event columns to the rules, so rules
/// can test them. Errors are bad input (exit 2).
pub fn load_manifest(tools: &ToolsConfig) -> Result<crate::tools::Manifest, crate::BadInput> {
    let manifest = crate::tools::load_checked(tools)?;
    crate::rules::fields::declare_columns(manifest.event_columns());
    Ok(manifest)
}

/// The container stats source's settings from `[enrich]`, when it is on.
pub(crate) fn container_stats(enrich: &EnrichConfig) -> Option<StatsSettings> {
    enrich.container_stats.then(|| StatsSettings {
        cgroup_root: enrich.cgroup_root.clone(),
        max_cgroups: enrich.max_stats_cgroups,
        files: enrich.runtime_files(),
    })
}

/// Where `eunomia run` looks for its configuration when `--config` is absent.
pub(crate) const DEFAULT_PATH: &str = "/etc/eunomia/eunomia.toml";

/// The documented default configuration file (`eunomia config default`).
pub(crate) const DEFAULT_TEXT: &str = include_str!("../../../deploy/eunomia.toml");

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// Agent-wide settings.
    pub(crate) agent: AgentConfig,
    /// The hot-path probes compiled into the binary.
    pub(crate) hotpath: HotpathConfig,
    /// HTTP/1.x request capture.
    pub(crate) http: crate::http::HttpConfig,
    /// Linking request spans into traces, and the service map.
    pub(crate) traces: crate::traces::config::TracesConfig,
    /// The supervised external tools.
    pub(crate) tools: ToolsConfig,
    /// Events and samples into metrics.
    pub(crate) aggregate: AggregateConfig,
    /// Where alerts, metrics and events go.
    pub(crate) sinks: SinksConfig,
    /// Container, pod and service labels; container resource metrics.
    pub(crate) enrich: EnrichConfig,
    /// The security rules.
    pub(crate) rules: RulesConfig,
    /// Container logs (stdout/stderr of containers).
    pub(crate) logs: LogsConfig,
    /// What the `OTEL_*` environment variables did ([`Config::load`] only).
    #[serde(skip)]
    pub(crate) env: Vec<crate::config::otel_env::EnvSetting>,
}

/// Agent-wide settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AgentConfig {
    /// How often kernel maps and other polled sources are read.
    #[serde(with = "humantime_serde")]
    pub(crate) poll_interval: Duration,
    /// Messages the pipeline buffers between sources and sinks before it
    /// drops (and counts) new ones.
    pub(crate) channel_capacity: usize,
    /// The control API's Unix socket (`eunomia tools`, `eunomia status`).
    pub(crate) control_socket: PathBuf,
    /// OpenTelemetry resource attributes added to (or replacing) the
    /// detected ones (`service.name`, `host.name`, ...): e.g.
    /// `k8s.cluster.name`, `deployment.environment.name`.
    pub(crate) resource_attributes: BTreeMap<String, String>,
    /// The most of the machine the agent may cost, in % of all CPUs (its
    /// process, its tools' processes and their BPF programs, as measured
    /// live); above it for a while, the agent degrades (`crate::budget`).
    /// None: no budget.
    pub(crate) cpu_budget: Option<f64>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(10),
            channel_capacity: 8192,
            control_socket: PathBuf::from(crate::cli::DEFAULT_SOCKET),
            resource_attributes: BTreeMap::new(),
            cpu_budget: None,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file may be changed by others than root.
    #[error(transparent)]
    Untrusted(#[from] crate::trust::Untrusted),
    /// The file is not valid TOML or does not fit the schema; `message`
    /// carries toml's line, column and the offending text.
    #[error("{}:{line}:{col}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line of the error (1-based).
        line: usize,
        /// The column of the error (1-based).
        col: usize,
        /// What is wrong and where.
        message: String,
    },
    /// An `OTEL_*` environment variable cannot be used.
    #[error("environment: {0}")]
    Env(#[from] crate::config::otel_env::EnvError),
    /// A value is out of its range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or `<built-in defaults>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads `path`, or [`DEFAULT_PATH`] when it exists, or the defaults,
    /// then applies the `OTEL_*` environment variables
    /// ([`crate::config::otel_env`]; the file wins where both set a key).
    pub(crate) fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &crate::config::otel_env::process_env)
    }

    /// [`Config::load`] with the environment given by `env`.
    pub(crate) fn load_with_env(
        path: Option<&Path>,
        env: crate::config::otel_env::Lookup<'_>,
    ) -> Result<Config, ConfigError> {
        let path = match path {
            Some(path) => Some(path),
            None if Path::new(DEFAULT_PATH).exists() => Some(Path::new(DEFAULT_PATH)),
            None => None,
        };
        let (mut config, table, shown) = match path {
            Some(path) => {
                let text = read(path)?;
                let (config, table) = Self::parse(&text, path)?;
                (config, table, path.to_owned())
            }
            None => (
                Config::default(),
                toml::Table::new(),
                PathBuf::from("<built-in defaults>"),
            ),
        };
        config.env = crate::config::otel_env::apply(&mut config, &table, env)?;
        config.validate(&shown)?;
        Ok(config)
    }

    #[cfg(test)]
    /// Parses and validates `text`; `path` is only used in error messages.
    pub(crate) fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (config, _) = Self::parse(text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses `text` into the configuration and the plain TOML table (which
    /// keys the file sets).
    fn parse(text: &str, path: &Path) -> Result<(Config, toml::Table), ConfigError> {
        let parse_err = |e: toml::de::Error| {
            let (line, col) = e
                .span()
                .map_or((1, 1), |s| crate::textpos::line_col(text, s.start));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                col,
                message: toml_message(&e),
            }
        };
        let mut config: Config = toml::from_str(text).map_err(parse_err)?;
        let table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        if let Some(sinks) = table.get("sinks").and_then(|s| s.as_table()) {
            config.sinks.enable_configured(sinks);
        }
        Ok((config, table))
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if self.agent.poll_interval < Duration::from_millis(100) {
            return Err(invalid(format!(
                "agent.poll_interval = {:?} is too short (at least 100ms)",
                self.agent.poll_interval
            )));
        }
        if let Some(b) = self.agent.cpu_budget
            && !(b > 0.0 && b <= 100.0)
        {
            return Err(invalid(format!(
                "agent.cpu_budget = {b} is out of range (a % of the machine, above 0 and at most 100)"
            )));
        }
        if self.agent.channel_capacity == 0 {
            return Err(invalid("agent.channel_capacity must be at least 1".into()));
        }
        if let Some(k) = self
            .agent
            .resource_attributes
            .keys()
            .find(|k| k.trim().is_empty())
        {
            return Err(invalid(format!(
                "agent.resource_attributes: empty attribute name {k:?}"
            )));
        }
        self.aggregate.validate().map_err(invalid)?;
        self.sinks.validate().map_err(invalid)?;
        self.enrich.validate().map_err(invalid)?;
        self.logs.validate().map_err(invalid)?;
        self.http.validate().map_err(invalid)?;
        Ok(())
    }
}

/// Reads a config file the agent trusts: owned by root (or its own user)
/// and not writable by others ([`crate::trust`]).
fn read(path: &Path) -> Result<String, ConfigError> {
    crate::trust::check(path)?;
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// toml's message first, then its excerpt of the file underlined, without
/// its own `TOML parse error at line L, column C` (the error says `file:L:C`).
fn toml_message(e: &toml::de::Error) -> String {
    let full = e.to_string();
    let excerpt: Vec<&str> = full
        .lines()
        .skip(1)
        .take_while(|l| l.trim_start().starts_with('|') || l.contains(" | "))
        .collect();
    match excerpt.is_empty() {
        true => e.message().trim_end().to_owned(),
        false => format!("{}\n{}", e.message().trim_end(), excerpt.join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("test.toml"))
    }

    #[test]
    fn documented_default_file_is_valid_and_matches_the_defaults() {
        let c = parse(DEFAULT_TEXT).expect("deploy/eunomia.toml is valid");
        assert_eq!(
            c,
            Config::default(),
            "deploy/eunomia.toml drifted from the defaults"
        );
    }

    #[test]
    fn documented_sink_sections_show_the_defaults_once_uncommented() {
        // The sink sections are commented out (a section turns its sink on);
        // uncommented, their keys are still the defaults.
        let start = DEFAULT_TEXT.find("# [sinks.otlp]").expect("sinks block");
        let mut text = DEFAULT_TEXT[..start].to_owned();
        for line in DEFAULT_TEXT[start..].lines() {
            let body = line.strip_prefix("# ").unwrap_or("");
            let key = body.split(" = ").next().unwrap_or("");
            let is_toml = body.starts_with("[sinks.")
                || (body.contains(" = ")
                    && !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if is_toml {
                text.push_str(body);
                text.push('\n');
            }
        }
        let mut c: Config = toml::from_str(&text).expect("uncommented sinks parse");
        assert!(c.sinks.alertmanager.take().is_some());
        assert_eq!(
            c.sinks.otlp.metrics_endpoint.take().as_deref(),
            Some("http://metrics-core:4317")
        );
        assert_eq!(
            c.sinks.otlp.logs_endpoint.take().as_deref(),
            Some("http://logs-core:4317")
        );
        assert_eq!(
            c.sinks.otlp.traces_endpoint.take().as_deref(),
            Some("http://traces-core:4317")
        );
        assert!(c.sinks.otlp.tls.ca_file.take().is_some());
        c.sinks.otlp.tls = Default::default();
        c.sinks.otlp.buffer.spill_dir = None;
        assert_eq!(
            c,
            Config::default(),
            "a documented sink key drifted from its default"
        );
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.agent.poll_interval, Duration::from_secs(10));
    }

    #[test]
    fn cpu_budget_is_a_share_of_the_machine() {
        let c = parse("[agent]\ncpu_budget = 2.5\n").unwrap();
        assert_eq!(c.agent.cpu_budget, Some(2.5));
        for bad in ["0", "-1", "101"] {
            let err = parse(&format!("[agent]\ncpu_budget = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains("agent.cpu_budget"), "{err}");
        }
    }

    #[test]
    fn durations_are_human() {
        let c = parse("[agent]\npoll_interval = \"2s\"\n").unwrap();
        assert_eq!(c.agent.poll_interval, Duration::from_secs(2));
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let err = parse("[agent]\npoll_interval = \"2s\"\nbogus = 1\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("test.toml:3:1: "), "{msg}");
        assert!(!msg.contains("at line"), "the position said twice: {msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn traces_values_out_of_range_name_file_line_and_column() {
        let c = parse("[traces]\nhold = \"1s\"\nmax_edges = 50\n").unwrap();
        assert_eq!(
            (c.traces.hold, c.traces.max_edges),
            (Duration::from_secs(1), 50)
        );
        let msg = parse("[traces]\nhold = \"1s\"\nmax_spans = 0\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("test.toml:3:13: "), "{msg}");
        assert!(msg.contains("traces.max_spans = 0"), "{msg}");
        let msg = parse("[traces]\nhold = \"5s\"\nwindow = \"2s\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("test.toml:1:1: "), "{msg}");
        assert!(msg.contains("traces.window"), "{msg}");
    }

    #[test]
    fn rules_and_alertmanager_sections() {
        let c = parse(
            "[rules]\nfiles = [\"/etc/eunomia/rules.d\"]\ndedup_window = \"5m\"\n[sinks.alertmanager]\nurl = \"http://127.0.0.1:9093\"\nresolve_timeout = \"10m\"\n",
        )
        .unwrap();
        assert_eq!(c.rules.dedup_window, Duration::from_secs(300));
        assert!(c.rules.defaults);
        let am = c.sinks.alertmanager.unwrap();
        assert_eq!(am.resolve_timeout, Duration::from_secs(600));
        // Over reqwest, https:// works; another scheme is refused.
        let err = parse("[sinks.alertmanager]\nurl = \"ftp://x\"\n").unwrap_err();
        assert!(err.to_string().contains("sinks.alertmanager"), "{err}");
    }

    #[test]
    fn too_short_interval_is_invalid() {
        let err = parse("[agent]\npoll_interval = \"1ms\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }
}
