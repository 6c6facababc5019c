//! The per-line cost of container logs (issue 24): one pass over a real
//! log file through what the agent does to every line — tail (pread, line
//! split), parse (Docker json-file or CRI), join partial lines, read level,
//! trace ids and pattern, count the pattern, build the `log` event with its
//! container's workload, encode it as an OTLP log record (protobuf bytes).
//! Prints one JSON object: lines, bytes, CPU seconds (user + system,
//! getrusage) and lines per CPU-second.
//!
//! `bench-logs FILE docker|cri`

use std::{path::Path, sync::Arc};

use eunomia::{
    logs::{
        log_event,
        patterns::PatternCounts,
        tail::{Seen, Start, Tailer},
    },
    pipeline::ToolRecord,
    sinks::otlp::logs_wire::encode_log_record,
};
use model::{Container, Runtime, Workload};
use parsers::{Record, logs::LogFormat};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(format)) = (args.next(), args.next()) else {
        eprintln!("usage: bench-logs FILE docker|cri");
        std::process::exit(2);
    };
    let format = match format.as_str() {
        "docker" => LogFormat::DockerJson,
        "cri" => LogFormat::Cri,
        other => {
            eprintln!("bench-logs: unknown format {other}");
            std::process::exit(2);
        }
    };
    let workload = Arc::new(Workload {
        container: Some(Container {
            id: "b".repeat(64),
            runtime: Runtime::Docker,
            name: Some("bench".into()),
            image: Some("bench:1".into()),
            namespace: None,
            sandbox: false,
        }),
        ..Workload::default()
    });
    let tool: Arc<str> = "logs".into();
    let mut patterns = PatternCounts::new(200);
    let (mut lines, mut malformed, mut encoded) = (0u64, 0u64, 0u64);
    let start = cpu_seconds();
    let mut tailer = Tailer::open(Path::new(&file), format, Start::Beginning, 64 * 1024);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let out = tailer.poll(1 << 20, &mut || true, &mut |seen| match seen {
            Seen::Malformed(_) => malformed += 1,
            Seen::Line(line) => {
                lines += 1;
                let insight = parsers::logs::understand(&line.text);
                patterns.count(insight.level, &insight.pattern);
                let record = ToolRecord {
                    tool: tool.clone(),
                    record: Record::Event(log_event(tool.clone(), &line, insight)),
                    workload: Some(workload.clone()),
                };
                buf.clear();
                encode_log_record(&record, 0, &mut buf);
                encoded += buf.len() as u64;
            }
        });
        if out.bytes == 0 {
            break;
        }
    }
    let cpu = cpu_seconds() - start;
    let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    println!(
        "{}",
        serde_json::json!({
            "lines": lines,
            "malformed": malformed,
            "bytes": bytes,
            "otlp_bytes": encoded,
            "patterns": patterns.len(),
            "cpu_s": cpu,
            "lines_per_cpu_s": lines as f64 / cpu.max(1e-9),
        })
    );
}
