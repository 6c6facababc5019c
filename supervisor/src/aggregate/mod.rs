//! Aggregation: folds samples (hot path, cgroup stats, tools' histograms) and
//! events (through configurable rules) into cumulative metrics of four kinds
//! — Sum, Count, LastValue, Histogram — with a bounded number of series per
//! metric, and hands the sinks a [`Snapshot`] on demand.
//!
//! The aggregator is shared by the pipeline's consume loop (which feeds it)
//! and the sinks (which collect from it), behind a mutex held briefly.

pub(crate) mod config;
pub(crate) mod histogram;
pub mod names;
pub(crate) mod store;
mod units;

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
};

use hashbrown::HashMap;
use model::{EventView, ValueRef};

pub use config::{AggregateConfig, EventRule, MetricKind};
pub(crate) use histogram::Histogram;
#[cfg(test)]
pub(crate) use store::OVERFLOW_VALUE;
pub(crate) use store::{Labels, SeriesValue};
use store::{MetricDesc, MetricStore};
pub(crate) use units::unit_of;
use units::{
    base_unit, column_in_base_units, default_bounds, help_of, leak, tool_metric_name, unit_scale,
};

use crate::{
    host::now_ns,
    pipeline::{Message, SampleBatch, SampleValue},
    selfmetrics::{Registry, SelfKind},
};

/// An aggregator shared between the consume loop and the sinks.
pub(crate) type SharedAggregator = Arc<Mutex<Aggregator>>;

/// The metrics at one instant, as every sink receives them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Collection time, ns since the Unix epoch.
    pub(crate) time_ns: u64,
    /// The metrics, in a stable order (by name).
    pub(crate) metrics: Vec<MetricSnapshot>,
}

/// One metric in a [`Snapshot`].
#[derive(Debug, Clone)]
pub(crate) struct MetricSnapshot {
    /// Name.
    pub(crate) name: &'static str,
    /// Help text.
    pub(crate) help: &'static str,
    /// Kind.
    pub(crate) kind: MetricKind,
    /// Unit (UCUM, as OTLP wants it), derived from the name's suffix.
    pub(crate) unit: &'static str,
    /// One point per series.
    pub(crate) points: Vec<Point>,
}

/// The cumulative value of one series at snapshot time.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    /// Labels.
    pub(crate) labels: Labels,
    /// Start of the cumulative value (series creation), ns since the epoch.
    pub(crate) start_ns: u64,
    /// The value.
    pub(crate) value: PointValue,
}

/// A point's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PointValue {
    /// Sum, count or gauge.
    Number(f64),
    /// A histogram.
    Histogram(Histogram),
}

/// A compiled event rule.
#[derive(Debug)]
struct Rule {
    metric: usize,
    tool: Option<Box<str>>,
    field: Option<Box<str>>,
    labels: Vec<&'static str>,
    scale: f64,
}

/// Folds samples and events into metrics.
#[derive(Debug)]
pub struct Aggregator {
    config: AggregateConfig,
    metrics: Vec<MetricStore>,
    by_name: HashMap<&'static str, usize>,
    rules: Vec<Rule>,
    rules_by_kind: HashMap<Box<str>, Vec<usize>>,
    any_kind: Vec<usize>,
    registries: Vec<Arc<Registry>>,
    keybuf: String,
    now_ns: u64,
    start_ns: u64,
    /// Samples refused because their metric exists with another kind.
    kind_conflicts: u64,
}

impl Aggregator {
    /// An aggregator with `config`'s rules and bounds that also exports the
    /// self-metrics of `registries`.
    pub fn new(config: &AggregateConfig, registries: Vec<Arc<Registry>>) -> Aggregator {
        let now = now_ns();
        let mut a = Aggregator {
            config: config.clone(),
            metrics: Vec::new(),
            by_name: HashMap::new(),
            rules: Vec::new(),
            rules_by_kind: HashMap::new(),
            any_kind: Vec::new(),
            registries,
            keybuf: String::with_capacity(128),
            now_ns: now,
            start_ns: now,
            kind_conflicts: 0,
        };
        for rule in config.effective_rules() {
            a.compile(&rule);
        }
        a
    }

    /// Wraps `self` for sharing.
    pub fn shared(self) -> SharedAggregator {
        Arc::new(Mutex::new(self))
    }

    fn compile(&mut self, r: &EventRule) {
        let bounds = (r.metric_type == MetricKind::Histogram).then(|| {
            r.buckets
                .as_ref()
                .map(|b| Arc::from(b.as_slice()))
                .unwrap_or_else(|| default_bounds(&r.metric))
        });
        let name = leak(&r.metric);
        let help = leak(r.help.as_deref().unwrap_or(""));
        let Some(metric) = self.metric_index(name, help, r.metric_type, bounds) else {
            return;
        };
        let rule = Rule {
            metric,
            tool: r.tool.as_deref().map(Into::into),
            field: r.field.as_deref().map(Into::into),
            labels: r.labels.iter().map(|l| leak(l)).collect(),
            scale: r.scale.unwrap_or(1.0),
        };
        self.rules.push(rule);
        let i = self.rules.len() - 1;
        if r.kind == "*" {
            self.any_kind.push(i);
        } else {
            self.rules_by_kind
                .entry(r.kind.as_str().into())
                .or_default()
                .push(i);
        }
    }

    /// The index of metric `name`, created if new; `None` when it exists
    /// with another kind.
    fn metric_index(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        bounds: Option<Arc<[f64]>>,
    ) -> Option<usize> {
        if let Some(&i) = self.by_name.get(name) {
            return (self.metrics[i].desc.kind == kind).then_some(i);
        }
        let desc = MetricDesc {
            name,
            help,
            kind,
            bounds,
            log2_scale: 1.0,
        };
        self.metrics
            .push(MetricStore::new(desc, self.config.limit_of(name)));
        self.by_name.insert(name, self.metrics.len() - 1);
        Some(self.metrics.len() - 1)
    }

    /// Takes one pipeline message.
    pub(crate) fn ingest(&mut self, msg: &Message) {
        self.now_ns = now_ns();
        match msg {
            Message::Samples(batch) => self.ingest_samples(batch),
            Message::Record(r) => match &r.record {
                parsers::Record::Event(_) => self.ingest_event(r),
                parsers::Record::Histogram(h) => self.ingest_tool_histogram(h),
                parsers::Record::Table(t) => self.ingest_table(t),
                parsers::Record::Stack(_) => {}
            },
            // the traces stage takes them (their RED metrics come as samples)
            Message::Requests(_) => {}
        }
    }

    /// Folds a histogram a tool printed for one interval (libbpf-tools clear
    /// their maps every interval, so the counts are deltas) into
    /// `eunomia_tool_<tool>_<base unit>`, keeping the printed bucket bounds
    /// converted to the base unit (`seconds`, `bytes`), labelled by the
    /// per-key label (`disk`, `pid`, ...).
    pub(crate) fn ingest_tool_histogram(&mut self, h: &parsers::HistogramSnapshot) {
        let (unit, scale) = base_unit(&h.unit);
        let name = tool_metric_name(&h.tool, unit);
        let help = leak(&format!("Histogram printed by {} (in {unit}).", h.tool));
        let Some(m) = self.metric_index(name, help, MetricKind::Histogram, None) else {
            self.kind_conflicts += 1;
            return;
        };
        self.metrics[m].desc.log2_scale = scale;
        self.keybuf.clear();
        if let Some(l) = &h.label {
            let _ = write!(self.keybuf, "{}={}\x1f", l.key, l.value);
        }
        let labels = || -> Labels { h.label.iter().map(|l| (l.key, l.value.clone())).collect() };
        let series = self.metrics[m].series_mut(&self.keybuf, self.now_ns, labels);
        if let SeriesValue::Histogram(hist) = &mut series.value {
            hist.add_buckets(
                h.buckets
                    .iter()
                    .map(|b| (b.low as f64, b.high as f64, b.count)),
            );
        }
    }

    /// Folds a periodic table (syscount, hardirqs, softirqs, biopattern):
    /// every numeric column becomes the LastValue `eunomia_tool_<tool>_<column>`
    /// labelled by the row's text columns.
    pub(crate) fn ingest_table(&mut self, t: &parsers::TableSnapshot) {
        for row in &t.rows {
            let labels: Vec<(&'static str, Box<str>)> = t
                .columns
                .iter()
                .zip(row)
                .filter_map(|(c, v)| v.as_str().map(|s| (*c, Box::from(s))))
                .collect();
            for (col, v) in t.columns.iter().zip(row) {
                let value = v.as_ref();
                let Some(x) = value.as_f64().filter(|_| v.as_str().is_none()) else {
                    continue;
                };
                let (col, factor) = column_in_base_units(col, &value);
                self.set_table_cell(&t.tool, col, &labels, x * factor);
            }
        }
    }

    fn set_table_cell(
        &mut self,
        tool: &str,
        col: &str,
        labels: &[(&'static str, Box<str>)],
        x: f64,
    ) {
        let name = tool_metric_name(tool, col);
        let help = leak(&format!("Column {col} of {tool}'s periodic table."));
        let Some(m) = self.metric_index(name, help, MetricKind::LastValue, None) else {
            self.kind_conflicts += 1;
            return;
        };
        self.keybuf.clear();
        for (k, v) in labels {
            let _ = write!(self.keybuf, "{k}={v}\x1f");
        }
        let series = self.metrics[m].series_mut(&self.keybuf, self.now_ns, || labels.into());
        series.value = SeriesValue::Last(x);
    }

    #[cfg(test)]
    /// Sets the clock used to stamp series (tests and benchmarks).
    pub(crate) fn set_now(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }

    /// Folds one batch of samples: deltas into Sums, gauges into
    /// LastValues, log2 histograms into Histograms with log2 bounds.
    pub(crate) fn ingest_samples(&mut self, batch: &SampleBatch) {
        for s in &batch.samples {
            let kind = match s.value {
                SampleValue::Delta(_) | SampleValue::DeltaF64(_) => MetricKind::Sum,
                SampleValue::Gauge(_) => MetricKind::LastValue,
                SampleValue::Log2Histogram { .. } | SampleValue::Histogram { .. } => {
                    MetricKind::Histogram
                }
            };
            let bounds = match &s.value {
                SampleValue::Histogram { bounds, .. } if !self.by_name.contains_key(s.metric) => {
                    Some(Arc::from(*bounds))
                }
                _ => None,
            };
            let Some(m) = self.metric_index(s.metric, help_of(s.metric), kind, bounds) else {
                self.kind_conflicts += 1;
                continue;
            };
            if let SampleValue::Log2Histogram { unit, .. } = &s.value {
                self.metrics[m].desc.log2_scale = unit_scale(unit);
            }
            self.keybuf.clear();
            for (k, v) in &s.labels {
                let _ = write!(self.keybuf, "{k}={v}\x1f");
            }
            let series = self.metrics[m].series_mut(&self.keybuf, self.now_ns, || {
                s.labels
                    .iter()
                    .map(|(k, v)| (*k, Box::from(v.as_str())))
                    .collect()
            });
            match (&mut series.value, &s.value) {
                (SeriesValue::Sum(x), SampleValue::Delta(d)) => *x += *d as f64,
                (SeriesValue::Sum(x), SampleValue::DeltaF64(d)) => *x += *d,
                (SeriesValue::Last(x), SampleValue::Gauge(g)) => *x = *g,
                (SeriesValue::Histogram(h), SampleValue::Log2Histogram { counts, .. }) => {
                    h.add_log2(counts)
                }
                (SeriesValue::Histogram(h), SampleValue::Histogram { counts, sum, .. }) => {
                    h.add_counts(counts, *sum)
                }
                _ => {}
            }
        }
    }

    /// Folds one event through every rule of its kind.
    pub fn ingest_event(&mut self, ev: &dyn EventView) {
        let kinds = self.rules_by_kind.get(ev.kind()).map(Vec::as_slice);
        let mut cx = Apply {
            metrics: &mut self.metrics,
            keybuf: &mut self.keybuf,
            now_ns: self.now_ns,
        };
        for &i in self.any_kind.iter().chain(kinds.unwrap_or_default()) {
            cx.apply(&self.rules[i], ev);
        }
    }

    /// Expires idle series, then returns every metric's current values
    /// together with the self-metrics.
    pub fn collect(&mut self) -> Snapshot {
        let now = now_ns();
        self.now_ns = now;
        let cutoff = now.saturating_sub(self.config.series_ttl.as_nanos() as u64);
        let mut metrics: Vec<MetricSnapshot> = Vec::with_capacity(self.metrics.len() + 8);
        for m in &mut self.metrics {
            m.expire(cutoff);
            if m.is_empty() {
                continue;
            }
            metrics.push(snapshot_of(m));
        }
        metrics.extend(self.own_metrics());
        for r in &self.registries {
            merge_self_points(&mut metrics, r, self.start_ns);
        }
        metrics.sort_by(|a, b| a.name.cmp(b.name));
        Snapshot {
            time_ns: now,
            metrics,
        }
    }

    /// The aggregator's self-metrics: series per metric, overflow and expiry counts.
    fn own_metrics(&self) -> Vec<MetricSnapshot> {
        let point = |metric: &'static str, v: f64| Point {
            labels: Arc::from([("metric", Box::from(metric))]),
            start_ns: self.start_ns,
            value: PointValue::Number(v),
        };
        let mut series = Vec::new();
        let mut overflow = Vec::new();
        let mut expired = Vec::new();
        for m in &self.metrics {
            series.push(point(m.desc.name, m.len() as f64));
            if m.overflowed > 0 {
                overflow.push(point(m.desc.name, m.overflowed as f64));
            }
            if m.expired > 0 {
                expired.push(point(m.desc.name, m.expired as f64));
            }
        }
        let mk = |name, help, kind, points| MetricSnapshot {
            name,
            help,
            kind,
            unit: "1",
            points,
        };
        let mut out = vec![mk(
            "eunomia_aggregate_series",
            "Series held per metric (without the overflow series).",
            MetricKind::LastValue,
            series,
        )];
        out.push(mk(
            "eunomia_aggregate_overflow_total",
            "Updates folded into a metric's overflow series because its series bound was reached.",
            MetricKind::Sum,
            overflow,
        ));
        out.push(mk(
            "eunomia_aggregate_expired_series_total",
            "Series dropped because they were not updated within aggregate.series_ttl.",
            MetricKind::Sum,
            expired,
        ));
        out.retain(|m| !m.points.is_empty());
        out
    }

    #[cfg(test)]
    /// The metric `name`'s store, if any (tests).
    pub(crate) fn series_count(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).map(|&i| self.metrics[i].len())
    }
}

/// What applying a rule needs mutably, borrowed apart from the rules.
struct Apply<'a> {
    metrics: &'a mut [MetricStore],
    keybuf: &'a mut String,
    now_ns: u64,
}

impl Apply<'_> {
    fn apply(&mut self, r: &Rule, ev: &dyn EventView) {
        if r.tool.as_deref().is_some_and(|t| t != ev.tool()) {
            return;
        }
        let value = match &r.field {
            Some(f) => match ev.get(f).and_then(|v| v.as_f64()) {
                Some(v) => v * r.scale,
                None => return,
            },
            None => 1.0,
        };
        self.keybuf.clear();
        for l in &r.labels {
            match label_of(ev, l) {
                Some(ValueRef::Str(v)) => self.keybuf.push_str(v),
                Some(v) => {
                    let _ = write!(self.keybuf, "{v}");
                }
                None => self.keybuf.push('\x00'),
            }
            self.keybuf.push('\x1f');
        }
        let series = self.metrics[r.metric].series_mut(self.keybuf, self.now_ns, || {
            r.labels
                .iter()
                .filter_map(|l| label_of(ev, l).map(|v| (*l, v.to_string().into_boxed_str())))
                .collect()
        });
        match &mut series.value {
            SeriesValue::Sum(x) => *x += value,
            SeriesValue::Last(x) => *x = value,
            SeriesValue::Histogram(h) => h.observe(value),
        }
    }
}

/// The label `name` of an event: a field, or the pseudo-fields `tool` and `kind`.
fn label_of<'a>(ev: &'a dyn EventView, name: &str) -> Option<ValueRef<'a>> {
    match ev.get(name) {
        Some(v) => Some(v),
        None if name == "tool" => Some(ValueRef::Str(ev.tool())),
        None if name == "kind" => Some(ValueRef::Str(ev.kind())),
        None => None,
    }
}

fn snapshot_of(m: &MetricStore) -> MetricSnapshot {
    let points = m
        .iter()
        .map(|s| Point {
            labels: s.labels.clone(),
            start_ns: s.start_ns,
            value: match &s.value {
                SeriesValue::Sum(x) | SeriesValue::Last(x) => PointValue::Number(*x),
                SeriesValue::Histogram(h) => PointValue::Histogram(h.clone()),
            },
        })
        .collect();
    MetricSnapshot {
        name: m.desc.name,
        help: m.desc.help,
        kind: m.desc.kind,
        unit: unit_of(m.desc.name),
        points,
    }
}

/// Adds a registry's values, grouped by name, to `metrics`.
fn merge_self_points(metrics: &mut Vec<MetricSnapshot>, registry: &Registry, start_ns: u64) {
    for p in registry.read() {
        let kind = match p.kind {
            SelfKind::Counter => MetricKind::Sum,
            SelfKind::Gauge => MetricKind::LastValue,
        };
        let point = Point {
            labels: p
                .labels
                .iter()
                .map(|(k, v)| (*k, Box::from(v.as_str())))
                .collect(),
            start_ns,
            value: PointValue::Number(p.value),
        };
        match metrics.iter_mut().find(|m| m.name == p.name) {
            Some(m) => m.points.push(point),
            None => metrics.push(MetricSnapshot {
                name: p.name,
                help: p.help,
                kind,
                unit: unit_of(p.name),
                points: vec![point],
            }),
        }
    }
}

#[cfg(test)]
mod tests;
