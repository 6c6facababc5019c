//! Names and units: metric units from name suffixes, the base units tools'
//! histograms and table columns are kept in, and the names made for them.

use std::sync::{Arc, Mutex};

use model::ValueRef;

use super::histogram;

/// The UCUM unit of a metric, from its name's suffix.
pub(crate) fn unit_of(name: &str) -> &'static str {
    let base = name.strip_suffix("_total").unwrap_or(name);
    match base.rsplit('_').next() {
        Some("seconds") => "s",
        Some("bytes") => "By",
        Some("us") | Some("usecs") => "us",
        Some("ns") | Some("nsecs") => "ns",
        Some("ms") | Some("msecs") => "ms",
        Some("microseconds") => "us",
        Some("nanoseconds") => "ns",
        Some("milliseconds") => "ms",
        Some("kibibytes") => "KiBy",
        _ => "1",
    }
}

/// Default histogram bounds by the unit suffix of `metric`.
pub(super) fn default_bounds(metric: &str) -> Arc<[f64]> {
    match unit_of(metric) {
        "By" => histogram::default_bytes_bounds(),
        _ => histogram::default_seconds_bounds(),
    }
}

/// `eunomia_tool_<tool>_<suffix>`, with characters outside `[a-z0-9_]` as `_`.
pub(super) fn tool_metric_name(tool: &str, suffix: &str) -> &'static str {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    leak(&format!("eunomia_tool_{}_{}", clean(tool), clean(suffix)))
}

/// The base unit a printed histogram unit is kept in, and the factor
/// from one to the other.
pub(super) fn base_unit(u: &parsers::Unit) -> (&str, f64) {
    match u {
        parsers::Unit::Nsecs => ("seconds", 1e-9),
        parsers::Unit::Usecs => ("seconds", 1e-6),
        parsers::Unit::Msecs => ("seconds", 1e-3),
        parsers::Unit::Secs => ("seconds", 1.0),
        parsers::Unit::Bytes => ("bytes", 1.0),
        parsers::Unit::Kbytes => ("bytes", 1024.0),
        parsers::Unit::Other(w) => (w, 1.0),
    }
}

/// Base units per unit of a hot-path log2 histogram's values.
pub(super) fn unit_scale(unit: &str) -> f64 {
    match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        _ => 1.0,
    }
}

/// A table column's metric suffix in base units and the factor to apply:
/// durations in `_seconds`, `kbytes` in `bytes`, `*_pct` as a `*_ratio`.
pub(super) fn column_in_base_units(col: &'static str, value: &ValueRef<'_>) -> (&'static str, f64) {
    if matches!(value, ValueRef::Duration(_)) {
        return (leak(&format!("{col}_seconds")), 1.0);
    }
    if col == "kbytes" {
        return ("bytes", 1024.0);
    }
    match col.strip_suffix("_pct") {
        Some(base) => (leak(&format!("{base}_ratio")), 0.01),
        None => (col, 1.0),
    }
}

/// Help texts of metrics that sources produce as samples.
pub(super) fn help_of(metric: &str) -> &'static str {
    match metric {
        "eunomia_syscalls_total" => "Syscalls made, by syscall (hot path).",
        model::metrics::HTTP_SERVER_DURATION_METRIC => {
            "Duration of HTTP requests served (OpenTelemetry http.server.request.duration)."
        }
        model::metrics::HTTP_CLIENT_DURATION_METRIC => {
            "Duration of HTTP requests made (OpenTelemetry http.client.request.duration)."
        }
        _ => "",
    }
}

/// A `'static` copy of a configured name (bounded by the configuration;
/// leaked once per distinct string).
pub(super) fn leak(s: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = crate::sync::lock(&NAMES);
    if let Some(n) = names.iter().find(|n| **n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.push(n);
    n
}
