//! The `[traces]` section: how long request spans are held for linking,
//! how long they can be found, and how much the linker and the service map
//! hold. Every bound is checked while the file is read, so a value out of
//! range is an error naming the file, line and column (exit 2).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// How linking is bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinkConfig {
    /// How long a span waits for its parent before it is emitted.
    pub(crate) hold: Duration,
    /// How long a span can be found by later spans.
    pub(crate) window: Duration,
    /// Clock tolerance of the containment tests.
    pub(crate) slack: Duration,
    /// The tolerance of a second try when nothing matched within `slack`
    /// (spans timed from when the agent read them are late by how long
    /// their record waited; a busy machine makes that milliseconds).
    pub(crate) loose_slack: Duration,
    /// Spans kept at most; beyond, the oldest is emitted early.
    pub(crate) max_spans: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            hold: Duration::from_secs(2),
            window: Duration::from_secs(10),
            slack: Duration::from_micros(500),
            loose_slack: Duration::from_millis(100),
            max_spans: 100_000,
        }
    }
}

/// `[traces]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Raw")]
pub(crate) struct TracesConfig {
    /// How long a span waits for its parent (and the rest of its trace)
    /// before it is linked, sampled and handed to the sinks.
    pub(crate) hold: Duration,
    /// How long a span can be found by later spans (at least `hold`).
    pub(crate) window: Duration,
    /// Spans held at most; beyond, the oldest goes early (`evicted`).
    pub(crate) max_spans: usize,
    /// Edges of the service map at most; beyond, counted
    /// (`eunomia_service_graph_edges_overflow_total`).
    pub(crate) max_edges: usize,
}

impl Default for TracesConfig {
    fn default() -> Self {
        let link = LinkConfig::default();
        TracesConfig {
            hold: link.hold,
            window: link.window,
            max_spans: link.max_spans,
            max_edges: 2048,
        }
    }
}

impl TracesConfig {
    /// The linker's bounds.
    pub(crate) fn link(&self) -> LinkConfig {
        LinkConfig {
            hold: self.hold,
            window: self.window,
            max_spans: self.max_spans,
            ..LinkConfig::default()
        }
    }
}

/// The section as written, each value checked on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    #[serde(deserialize_with = "hold")]
    hold: Duration,
    #[serde(deserialize_with = "window")]
    window: Duration,
    #[serde(deserialize_with = "max_spans")]
    max_spans: usize,
    #[serde(deserialize_with = "max_edges")]
    max_edges: usize,
}

impl Default for Raw {
    fn default() -> Self {
        let d = TracesConfig::default();
        Raw {
            hold: d.hold,
            window: d.window,
            max_spans: d.max_spans,
            max_edges: d.max_edges,
        }
    }
}

impl TryFrom<Raw> for TracesConfig {
    type Error = String;

    fn try_from(r: Raw) -> Result<Self, String> {
        if r.window < r.hold {
            return Err(format!(
                "traces.window ({}) must be at least traces.hold ({})",
                humantime::format_duration(r.window),
                humantime::format_duration(r.hold)
            ));
        }
        Ok(TracesConfig {
            hold: r.hold,
            window: r.window,
            max_spans: r.max_spans,
            max_edges: r.max_edges,
        })
    }
}

/// A duration within `range`, named `key` in the error.
fn duration_in<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
    range: std::ops::RangeInclusive<Duration>,
) -> Result<Duration, D::Error> {
    let v = humantime_serde::deserialize(d)?;
    if !range.contains(&v) {
        return Err(D::Error::custom(format!(
            "traces.{key} = {} is out of range ({} to {})",
            humantime::format_duration(v),
            humantime::format_duration(*range.start()),
            humantime::format_duration(*range.end())
        )));
    }
    Ok(v)
}

/// A count within `range`, named `key` in the error.
fn count_in<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, D::Error> {
    let v = usize::deserialize(d)?;
    if !range.contains(&v) {
        return Err(D::Error::custom(format!(
            "traces.{key} = {v} is out of range ({}..={})",
            range.start(),
            range.end()
        )));
    }
    Ok(v)
}

fn hold<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_in(d, "hold", Duration::ZERO..=Duration::from_secs(60))
}

fn window<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_in(
        d,
        "window",
        Duration::from_secs(1)..=Duration::from_secs(600),
    )
}

fn max_spans<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count_in(d, "max_spans", 1..=10_000_000)
}

fn max_edges<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    count_in(d, "max_edges", 1..=1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_linkers_and_values_are_checked() {
        let d = TracesConfig::default();
        assert_eq!(
            (d.hold, d.window),
            (Duration::from_secs(2), Duration::from_secs(10))
        );
        assert_eq!(d.link(), LinkConfig::default());
        let c: TracesConfig =
            toml::from_str("hold = \"500ms\"\nwindow = \"5s\"\nmax_edges = 10\n").unwrap();
        assert_eq!(c.hold, Duration::from_millis(500));
        assert_eq!((c.max_spans, c.max_edges), (100_000, 10));
        for bad in [
            "hold = \"2m\"\n",
            "window = \"0s\"\n",
            "max_spans = 0\n",
            "max_edges = 0\n",
            "hold = \"5s\"\nwindow = \"2s\"\n",
            "bogus = 1\n",
        ] {
            assert!(toml::from_str::<TracesConfig>(bad).is_err(), "{bad}");
        }
        let e = toml::from_str::<TracesConfig>("max_spans = 0\n").unwrap_err();
        assert!(e.to_string().contains("traces.max_spans = 0"), "{e}");
        assert!(e.span().is_some());
    }
}
