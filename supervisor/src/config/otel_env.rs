//! The OpenTelemetry SDK environment variables, applied over the
//! configuration file as the specification describes them
//! (<https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>
//! and the OTLP exporter's):
//!
//! | variable | key |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | `sinks.otlp.endpoint` (and turns the sink on) |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | `sinks.otlp.metrics_endpoint` (and turns the sink on) |
//! | `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` | `sinks.otlp.logs_endpoint` (and turns the sink on) |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | `sinks.otlp.traces_endpoint` (and turns the sink on) |
//! | `OTEL_EXPORTER_OTLP_HEADERS` | `sinks.otlp.headers` (merged per header name) |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT` | `sinks.otlp.timeout` (milliseconds) |
//! | `OTEL_EXPORTER_OTLP_COMPRESSION` | `sinks.otlp.compression` (`gzip`, `none`) |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | only `grpc` is accepted |
//! | `OTEL_SDK_DISABLED` | `sinks.otlp.enabled = false` when `true` |
//! | `OTEL_SERVICE_NAME` | `agent.resource_attributes."service.name"` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | `agent.resource_attributes` (merged per key; `OTEL_SERVICE_NAME` wins for `service.name`) |
//!
//! The configuration file wins where both set a key; an empty variable
//! counts as unset. Unlike the specification's "warn and ignore", a value
//! that cannot be used is a configuration error (exit 2, naming the
//! variable): an agent that silently does not export is worse. Every
//! variable seen is recorded as an [`EnvSetting`], which `eunomia config
//! check` prints and `eunomia run` logs.

use std::{collections::BTreeMap, fmt, time::Duration};

use crate::{config::Config, sinks::otlp::Compression};

/// What became of one environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSetting {
    /// The variable, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub(crate) var: String,
    /// The configuration key it maps to.
    pub(crate) key: String,
    /// Applied, or why not.
    pub(crate) outcome: Outcome,
}

/// Whether an environment variable took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It set the key to the value shown (header values are not shown).
    Applied(String),
    /// The configuration file sets the key; the file's value is used.
    FileWins,
    /// The variable has no effect on eunomia (the reason).
    Unused(&'static str),
}

impl fmt::Display for EnvSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Applied(v) => write!(f, "{} applied: {} = {v}", self.var, self.key),
            Outcome::FileWins => write!(
                f,
                "{} not applied: the file sets {}, which wins",
                self.var, self.key
            ),
            Outcome::Unused(why) => write!(f, "{} not used: {why}", self.var),
        }
    }
}

/// An `OTEL_*` variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}: {message}")]
pub(crate) struct EnvError {
    /// The variable.
    pub(crate) var: &'static str,
    /// Its value (header values are elided).
    pub(crate) value: String,
    /// What is wrong.
    pub(crate) message: String,
}

/// Reads one variable; empty counts as unset.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub(crate) fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// Applies the variables `env` yields to `config`; `file` is the parsed
/// configuration file (empty without one), to know which keys it sets.
pub(crate) fn apply(
    config: &mut Config,
    file: &toml::Table,
    env: Lookup<'_>,
) -> Result<Vec<EnvSetting>, EnvError> {
    let mut a = Applier {
        config,
        file,
        env,
        out: Vec::new(),
    };
    a.protocol()?;
    a.endpoints()?;
    a.headers()?;
    a.timeout()?;
    a.compression()?;
    a.sdk_disabled()?;
    a.resource()?;
    Ok(a.out)
}

struct Applier<'a> {
    config: &'a mut Config,
    file: &'a toml::Table,
    env: Lookup<'a>,
    out: Vec<EnvSetting>,
}

impl Applier<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.trim().is_empty())
    }

    /// Whether the file sets the dotted `key` (`sinks.otlp.endpoint`).
    fn file_sets(&self, key: &str) -> bool {
        file_has(self.file, key)
    }

    fn record(&mut self, var: &str, key: &str, outcome: Outcome) {
        self.out.push(EnvSetting {
            var: var.to_owned(),
            key: key.to_owned(),
            outcome,
        });
    }

    /// Records `var` for `key` and says whether the env value is to be applied.
    fn claim(&mut self, var: &str, key: &str, shown: &str) -> bool {
        if self.file_sets(key) {
            self.record(var, key, Outcome::FileWins);
            false
        } else {
            self.record(var, key, Outcome::Applied(shown.to_owned()));
            true
        }
    }

    fn protocol(&mut self) -> Result<(), EnvError> {
        const VAR: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
        if let Some(v) = self.get(VAR) {
            if v.trim() != "grpc" {
                return Err(err(VAR, &v, "eunomia exports OTLP over gRPC only (grpc)"));
            }
            self.record(VAR, "sinks.otlp", Outcome::Applied("grpc".into()));
        }
        Ok(())
    }

    fn endpoints(&mut self) -> Result<(), EnvError> {
        const VARS: [(&str, &str); 4] = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "sinks.otlp.endpoint"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "sinks.otlp.metrics_endpoint",
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "sinks.otlp.logs_endpoint",
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "sinks.otlp.traces_endpoint",
            ),
        ];
        let mut first = None;
        for (var, key) in VARS {
            let Some(v) = self.get(var) else { continue };
            let v = v.trim().to_owned();
            crate::sinks::otlp::check_endpoint(key, &v).map_err(|m| err(var, &v, &m))?;
            first.get_or_insert(var);
            if self.claim(var, key, &v) {
                let otlp = &mut self.config.sinks.otlp;
                match key {
                    "sinks.otlp.endpoint" => otlp.endpoint = v,
                    "sinks.otlp.metrics_endpoint" => otlp.metrics_endpoint = Some(v),
                    "sinks.otlp.logs_endpoint" => otlp.logs_endpoint = Some(v),
                    _ => otlp.traces_endpoint = Some(v),
                }
            }
        }
        if let Some(var) = first
            && self.claim(var, "sinks.otlp.enabled", "true")
        {
            self.config.sinks.otlp.enabled = true;
        }
        Ok(())
    }

    fn headers(&mut self) -> Result<(), EnvError> {
        const VAR: &str = "OTEL_EXPORTER_OTLP_HEADERS";
        let Some(v) = self.get(VAR) else {
            return Ok(());
        };
        let pairs = parse_pairs(&v).map_err(|_| {
            err(
                VAR,
                "<not shown>",
                "expected name=value,name=value (percent-encoded values)",
            )
        })?;
        for (name, value) in pairs {
            let key = format!("sinks.otlp.headers.{name}");
            if self.claim(VAR, &key, "<set>") {
                self.config.sinks.otlp.headers.insert(name, value);
            }
        }
        Ok(())
    }

    fn timeout(&mut self) -> Result<(), EnvError> {
        const VAR: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
        let Some(v) = self.get(VAR) else {
            return Ok(());
        };
        let ms: u64 = v
            .trim()
            .parse()
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| err(VAR, &v, "expected a positive number of milliseconds"))?;
        let d = Duration::from_millis(ms);
        if self.claim(VAR, "sinks.otlp.timeout", &format!("{d:?}")) {
            self.config.sinks.otlp.timeout = d;
        }
        Ok(())
    }

    fn compression(&mut self) -> Result<(), EnvError> {
        const VAR: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
        let Some(v) = self.get(VAR) else {
            return Ok(());
        };
        let c = match v.trim() {
            "gzip" => Compression::Gzip,
            "none" => Compression::None,
            _ => return Err(err(VAR, &v, "expected gzip or none")),
        };
        if self.claim(VAR, "sinks.otlp.compression", v.trim()) {
            self.config.sinks.otlp.compression = c;
        }
        Ok(())
    }

    fn sdk_disabled(&mut self) -> Result<(), EnvError> {
        const VAR: &str = "OTEL_SDK_DISABLED";
        let Some(v) = self.get(VAR) else {
            return Ok(());
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => {
                // Replaces what an endpoint variable claimed above.
                self.out
                    .retain(|s| !(s.key == "sinks.otlp.enabled" && s.var != VAR));
                if self.claim(VAR, "sinks.otlp.enabled", "false") {
                    self.config.sinks.otlp.enabled = false;
                }
            }
            "false" => self.record(VAR, "", Outcome::Unused("false is the default")),
            _ => return Err(err(VAR, &v, "expected true or false")),
        }
        Ok(())
    }

    fn resource(&mut self) -> Result<(), EnvError> {
        const ATTRS: &str = "OTEL_RESOURCE_ATTRIBUTES";
        const NAME: &str = "OTEL_SERVICE_NAME";
        let mut env_attrs: BTreeMap<String, (&str, String)> = BTreeMap::new();
        if let Some(v) = self.get(ATTRS) {
            for (k, val) in parse_pairs(&v).map_err(|m| err(ATTRS, &v, &m))? {
                env_attrs.insert(k, (ATTRS, val));
            }
        }
        if let Some(v) = self.get(NAME) {
            env_attrs.insert("service.name".into(), (NAME, v.trim().to_owned()));
        }
        for (k, (var, val)) in env_attrs {
            // The file's key: agent.resource_attributes."service.name".
            let in_file = self
                .file
                .get("agent")
                .and_then(|a| a.get("resource_attributes"))
                .and_then(|r| r.get(&k))
                .is_some();
            let key = format!("agent.resource_attributes.\"{k}\"");
            if in_file {
                self.record(var, &key, Outcome::FileWins);
            } else {
                self.record(var, &key, Outcome::Applied(val.clone()));
                self.config.agent.resource_attributes.insert(k, val);
            }
        }
        Ok(())
    }
}

fn err(var: &'static str, value: &str, message: &str) -> EnvError {
    EnvError {
        var,
        value: value.to_owned(),
        message: message.to_owned(),
    }
}

/// Whether `table` has the dotted `key` (no quoting: the segments are plain).
fn file_has(table: &toml::Table, key: &str) -> bool {
    let mut parts = key.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    let mut cur = table.get(first);
    // Header names may contain dots only in theory; keep the rest whole
    // once inside a map-valued key.
    for part in parts {
        cur = match cur {
            Some(toml::Value::Table(t)) => t.get(part),
            _ => return false,
        };
    }
    cur.is_some()
}

/// `key1=value1,key2=value2` as the specification's W3C-baggage-like
/// format: keys and values trimmed, values percent-decoded.
pub(crate) fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in text.split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("{:?} is not key=value", item.trim()));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("{:?} has an empty key", item.trim()));
        }
        let v = percent_encoding::percent_decode_str(v.trim())
            .decode_utf8()
            .map_err(|_| format!("the value of {k:?} is not UTF-8 once decoded"))?;
        out.push((k.to_owned(), v.into_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, path::Path};

    use super::*;

    fn run(file: &str, vars: &[(&str, &str)]) -> Result<(Config, Vec<EnvSetting>), EnvError> {
        let mut config = Config::from_str(file, Path::new("t.toml")).unwrap();
        let table: toml::Table = toml::from_str(file).unwrap();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let settings = apply(&mut config, &table, &env)?;
        Ok((config, settings))
    }

    #[test]
    fn endpoint_from_env_turns_the_sink_on() {
        let (c, s) = run("", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://core:4317")]).unwrap();
        assert!(c.sinks.otlp.enabled);
        assert_eq!(c.sinks.otlp.endpoint, "http://core:4317");
        assert!(s.iter().any(|s| s.key == "sinks.otlp.endpoint"
            && s.outcome == Outcome::Applied("http://core:4317".into())));
    }

    #[test]
    fn the_file_wins_where_both_set_a_key() {
        let file =
            "[sinks.otlp]\nenabled = false\nendpoint = \"http://file:4317\"\ntimeout = \"3s\"\n";
        let (c, s) = run(
            file,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ],
        )
        .unwrap();
        assert!(!c.sinks.otlp.enabled);
        assert_eq!(c.sinks.otlp.endpoint, "http://file:4317");
        assert_eq!(c.sinks.otlp.timeout, Duration::from_secs(3));
        assert_eq!(c.sinks.otlp.compression, Compression::None);
        let line = s
            .iter()
            .find(|s| s.var == "OTEL_EXPORTER_OTLP_TIMEOUT")
            .unwrap()
            .to_string();
        assert!(line.contains("the file sets sinks.otlp.timeout"), "{line}");
    }

    #[test]
    fn signal_endpoints_headers_timeout() {
        let (c, _) = run(
            "[sinks.otlp.headers]\nx-tenant = \"file\"\n",
            &[
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://m:4317"),
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://l:4317"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "api-key=a%20b%3Dc , x-tenant=env",
                ),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ],
        )
        .unwrap();
        let o = &c.sinks.otlp;
        assert!(o.enabled);
        assert_eq!(o.metrics_endpoint.as_deref(), Some("https://m:4317"));
        assert_eq!(o.logs_endpoint.as_deref(), Some("http://l:4317"));
        assert_eq!(o.headers["api-key"], "a b=c");
        assert_eq!(o.headers["x-tenant"], "file");
        assert_eq!(o.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn sdk_disabled_turns_the_sink_off_unless_the_file_says_enabled() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ];
        let (c, s) = run("", &vars).unwrap();
        assert!(!c.sinks.otlp.enabled);
        assert_eq!(
            s.iter().filter(|s| s.key == "sinks.otlp.enabled").count(),
            1
        );
        let (c, _) = run("[sinks.otlp]\nenabled = true\n", &vars).unwrap();
        assert!(c.sinks.otlp.enabled);
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let (c, _) = run(
            "[agent.resource_attributes]\n\"deployment.environment.name\" = \"prod\"\n",
            &[
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=ignored,k8s.cluster.name=eu%2D1,deployment.environment.name=dev",
                ),
                ("OTEL_SERVICE_NAME", "node-agent"),
            ],
        )
        .unwrap();
        let r = &c.agent.resource_attributes;
        assert_eq!(r["service.name"], "node-agent");
        assert_eq!(r["k8s.cluster.name"], "eu-1");
        assert_eq!(r["deployment.environment.name"], "prod");
    }

    #[test]
    fn unusable_values_name_the_variable() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_SDK_DISABLED", "yes"),
        ] {
            let e = run("", &[(var, value)]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(e.to_string().starts_with(var), "{e}");
        }
        let e = run("", &[("OTEL_EXPORTER_OTLP_HEADERS", "secret")]).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn empty_means_unset_and_traces_have_their_endpoint() {
        let (c, s) = run(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", " "),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317"),
            ],
        )
        .unwrap();
        assert!(c.sinks.otlp.enabled);
        assert_eq!(
            c.sinks.otlp.traces_endpoint.as_deref(),
            Some("http://t:4317")
        );
        assert!(
            s.iter().any(|x| x.to_string().contains("traces_endpoint")),
            "{s:?}"
        );
    }
}
