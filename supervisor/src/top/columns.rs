//! The columns of `eunomia top`: header, how a row's cell reads and how
//! rows sort by it.

use std::cmp::Ordering;

use crate::live::Row;

/// One column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// The workload's name.
    Name,
    /// container, service, host.
    Kind,
    /// Kubernetes or containerd namespace.
    Namespace,
    /// Syscalls per second.
    Syscalls,
    /// Failed syscalls per second.
    Errors,
    /// The busiest syscalls.
    TopSyscalls,
    /// TCP connects per second.
    Connects,
    /// TCP accepts per second.
    Accepts,
    /// Failed connects per second.
    Failures,
    /// TCP resets per second.
    Resets,
    /// Bytes received per second.
    BytesIn,
    /// Bytes sent per second.
    BytesOut,
    /// CPU percent.
    Cpu,
    /// Memory in use.
    Memory,
    /// HTTP requests per second (empty until the agent sees HTTP).
    Requests,
    /// HTTP error percent.
    HttpErrors,
    /// HTTP p99 latency.
    P99,
}

/// Every column, left to right.
pub(crate) const ALL: [Column; 17] = [
    Column::Name,
    Column::Kind,
    Column::Namespace,
    Column::Syscalls,
    Column::Errors,
    Column::TopSyscalls,
    Column::Connects,
    Column::Accepts,
    Column::Failures,
    Column::Resets,
    Column::BytesIn,
    Column::BytesOut,
    Column::Cpu,
    Column::Memory,
    Column::Requests,
    Column::HttpErrors,
    Column::P99,
];

/// A rate: one decimal below 10, whole numbers above, `-` for zero.
pub(crate) fn rate(v: f64) -> String {
    match v {
        v if v <= 0.0 => "-".into(),
        v if v < 10.0 => format!("{v:.1}"),
        v => format!("{v:.0}"),
    }
}

/// Bytes (or bytes per second) with a binary unit.
pub(crate) fn bytes(v: f64) -> String {
    if v <= 0.0 {
        return "-".into();
    }
    let units = ["B", "K", "M", "G", "T"];
    let mut v = v;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if v < 10.0 && i > 0 {
        format!("{v:.1}{}", units[i])
    } else {
        format!("{v:.0}{}", units[i])
    }
}

impl Column {
    /// The header text.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Kind => "KIND",
            Column::Namespace => "NAMESPACE",
            Column::Syscalls => "SYSC/s",
            Column::Errors => "ERR/s",
            Column::TopSyscalls => "TOP SYSCALLS",
            Column::Connects => "CONN/s",
            Column::Accepts => "ACC/s",
            Column::Failures => "FAIL/s",
            Column::Resets => "RST/s",
            Column::BytesIn => "IN/s",
            Column::BytesOut => "OUT/s",
            Column::Cpu => "CPU%",
            Column::Memory => "MEM",
            Column::Requests => "REQ/s",
            Column::HttpErrors => "HERR%",
            Column::P99 => "P99ms",
        }
    }

    /// How wide the column is drawn.
    pub(crate) fn width(self) -> u16 {
        match self {
            Column::Name => 22,
            Column::Kind => 9,
            Column::Namespace => 11,
            Column::TopSyscalls => 24,
            Column::Syscalls => 8,
            _ => 7,
        }
    }

    /// Whether the column holds text (sorted ascending by default).
    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            Column::Name | Column::Kind | Column::Namespace | Column::TopSyscalls
        )
    }

    /// The number it sorts by (numeric columns).
    fn number(self, r: &Row) -> f64 {
        let http = r.http.as_ref();
        match self {
            Column::Syscalls => r.syscalls_per_s,
            Column::Errors => r.errors_per_s,
            Column::Connects => r.tcp_connects_per_s,
            Column::Accepts => r.tcp_accepts_per_s,
            Column::Failures => r.tcp_failures_per_s,
            Column::Resets => r.tcp_resets_per_s,
            Column::BytesIn => r.bytes_in_per_s,
            Column::BytesOut => r.bytes_out_per_s,
            Column::Cpu => r.cpu_percent.unwrap_or(-1.0),
            Column::Memory => r.memory_bytes.unwrap_or(-1.0),
            Column::Requests => http.map_or(-1.0, |h| h.requests_per_s),
            Column::HttpErrors => http.map_or(-1.0, |h| h.error_percent),
            Column::P99 => http.map_or(-1.0, |h| h.p99_ms),
            _ => 0.0,
        }
    }

    /// The text it sorts by (text columns).
    fn text(self, r: &Row) -> String {
        match self {
            Column::Name => r.name.clone(),
            Column::Kind => r.kind.as_str().to_owned(),
            Column::Namespace => r.namespace.clone(),
            Column::TopSyscalls => r.top_syscalls(3),
            _ => String::new(),
        }
    }

    /// Orders `a` before `b` by this column (ascending).
    pub(crate) fn compare(self, a: &Row, b: &Row) -> Ordering {
        if self.is_text() {
            self.text(a).cmp(&self.text(b))
        } else {
            self.number(a).total_cmp(&self.number(b))
        }
    }

    /// The cell of row `r`.
    pub(crate) fn cell(self, r: &Row) -> String {
        let http = r.http.as_ref();
        match self {
            Column::Name | Column::Kind | Column::Namespace | Column::TopSyscalls => self.text(r),
            Column::BytesIn | Column::BytesOut => bytes(self.number(r)),
            Column::Cpu => r.cpu_percent.map_or("-".into(), |c| format!("{c:.1}")),
            Column::Memory => r.memory_bytes.map_or("-".into(), bytes),
            Column::HttpErrors => http.map_or("-".into(), |h| format!("{:.1}", h.error_percent)),
            Column::P99 => http.map_or("-".into(), |h| format!("{:.1}", h.p99_ms)),
            _ => rate(self.number(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rates_and_bytes() {
        assert_eq!(rate(0.0), "-");
        assert_eq!(rate(2.345), "2.3");
        assert_eq!(rate(1234.4), "1234");
        assert_eq!(bytes(0.0), "-");
        assert_eq!(bytes(512.0), "512B");
        assert_eq!(bytes(1536.0), "1.5K");
        assert_eq!(bytes(300.0 * 1024.0 * 1024.0), "300M");
    }

    #[test]
    fn sorts_numbers_and_text() {
        let a = Row {
            name: "a".into(),
            syscalls_per_s: 5.0,
            ..Row::default()
        };
        let b = Row {
            name: "b".into(),
            syscalls_per_s: 1.0,
            cpu_percent: Some(3.0),
            ..Row::default()
        };
        assert_eq!(Column::Syscalls.compare(&a, &b), Ordering::Greater);
        assert_eq!(Column::Name.compare(&a, &b), Ordering::Less);
        assert_eq!(
            Column::Cpu.compare(&a, &b),
            Ordering::Less,
            "unknown sorts low"
        );
        assert_eq!(Column::Cpu.cell(&a), "-");
    }
}
