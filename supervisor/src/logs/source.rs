//! The source's loop: discover files, poll each within its budget, turn
//! whole lines into `log` events with their container's workload, count
//! patterns, save checkpoints, report counts.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use model::Workload;
use parsers::{
    Event, EventKind, Record, Value,
    escape::escape_lossy,
    fields,
    logs::{Insight, JoinedLine, LogFormat, trace::to_hex, understand},
};
use tokio_util::sync::CancellationToken;

use super::{
    checkpoint::{Checkpoints, Position},
    config::LogsConfig,
    discover::{LogFile, Roots, discover},
    limit::{Decision, RateLimit},
    patterns::PatternCounts,
    stats::{ContainerStats, Stats},
    tail::{PollOutcome, Seen, Start, Tailer},
};
use crate::{
    host::containers::RuntimeFiles,
    pipeline::{Message, PipelineTx, Sample, SampleBatch, SampleValue, ToolRecord},
    selfmetrics::Registry,
};

/// The `tool` of log events and the pipeline source name.
pub const TOOL: &str = "logs";
/// Messages per container, level and pattern (counter samples).
pub(crate) const MESSAGES: &str = "eunomia_container_log_messages_total";
/// How often the checkpoints are written (when they changed).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One container: its workload, limit, pattern counts and drop counters.
#[derive(Debug)]
struct ContainerLogs {
    workload: Arc<Workload>,
    limit: RateLimit,
    patterns: PatternCounts,
    stats: ContainerStats,
}

/// One followed file.
#[derive(Debug)]
struct Followed {
    tailer: Tailer,
    format: LogFormat,
    container: String,
    /// No longer found by discovery.
    missing: bool,
}

/// The container-log source.
#[derive(Debug)]
pub struct LogSource {
    config: LogsConfig,
    roots: Roots,
    tx: PipelineTx,
    tool: Arc<str>,
    checkpoints: Checkpoints,
    files: HashMap<PathBuf, Followed>,
    containers: HashMap<String, ContainerLogs>,
    stats: Stats,
    scanned: bool,
}

impl LogSource {
    /// A source reading the runtimes' roots in `files` and the kubelet's
    /// pod log directories, as far as `config` turns each on.
    pub(crate) fn new(
        config: &LogsConfig,
        files: RuntimeFiles,
        pod_logs_root: Option<PathBuf>,
        tx: PipelineTx,
        registry: &Arc<Registry>,
    ) -> LogSource {
        let roots = Roots {
            docker: files.docker_root.clone().filter(|_| config.docker),
            podman: files.podman_root.clone().filter(|_| config.podman),
            pods: pod_logs_root.filter(|_| config.cri),
            files,
        };
        let stats = Stats::new(registry);
        let checkpoints = Checkpoints::load(&config.checkpoint_file).unwrap_or_else(|e| {
            tracing::warn!("container logs: {e}; reading the files as new");
            stats.checkpoint_errors.inc();
            Checkpoints::empty(&config.checkpoint_file)
        });
        LogSource {
            config: config.clone(),
            roots,
            tx,
            tool: TOOL.into(),
            checkpoints,
            files: HashMap::new(),
            containers: HashMap::new(),
            stats,
            scanned: false,
        }
    }

    /// Polls until `shutdown`, then saves the checkpoints and reports the
    /// last counts.
    pub(crate) fn run(
        &mut self,
        poll: Duration,
        metrics_every: Duration,
        shutdown: &CancellationToken,
    ) {
        let mut discovered = None::<Instant>;
        let mut reported = Instant::now();
        let mut saved = Instant::now();
        while !shutdown.is_cancelled() {
            if discovered.is_none_or(|t| t.elapsed() >= self.config.discover_interval) {
                self.discover();
                discovered = Some(Instant::now());
            }
            let busy = self.poll_all();
            if reported.elapsed() >= metrics_every {
                self.report(reported.elapsed());
                reported = Instant::now();
            }
            if saved.elapsed() >= SAVE_EVERY {
                self.save();
                saved = Instant::now();
            }
            if !busy {
                std::thread::sleep(poll);
            }
        }
        self.save();
        self.report(reported.elapsed());
    }

    /// Follows the files discovery finds; marks those it no longer finds.
    pub(crate) fn discover(&mut self) {
        let found = discover(&self.roots, self.config.max_files);
        for f in self.files.values_mut() {
            f.missing = true;
        }
        for file in found {
            self.follow(file);
        }
        if !self.scanned {
            // Positions of files gone while the agent was down.
            let files = &self.files;
            self.checkpoints.retain(|p| files.contains_key(p));
        }
        self.scanned = true;
        self.stats.files.set(self.files.len() as i64);
    }

    fn follow(&mut self, file: LogFile) {
        let key = container_key(&file);
        let entry = self
            .containers
            .entry(key.clone())
            .or_insert_with(|| ContainerLogs {
                workload: file.workload.clone(),
                limit: RateLimit::new(
                    self.config.rate_limit,
                    self.config.burst,
                    self.config.sample_1_in,
                ),
                patterns: PatternCounts::new(self.config.max_patterns),
                stats: self.stats.container(&display_name(&file.workload, &key)),
            });
        if file.workload.labels().count() > entry.workload.labels().count() {
            entry.workload = file.workload.clone();
        }
        if let Some(f) = self.files.get_mut(&file.path) {
            f.missing = false;
            return;
        }
        let start = match self.checkpoints.get(&file.path) {
            Some(p) => Start::At {
                inode: p.inode,
                offset: p.offset,
            },
            None if !self.scanned && !self.config.read_existing => Start::End,
            None => Start::Beginning,
        };
        tracing::debug!(path = %file.path.display(), ?start, "following a container log");
        let tailer = Tailer::open(&file.path, file.format, start, self.config.max_line_bytes);
        self.files.insert(
            file.path,
            Followed {
                tailer,
                format: file.format,
                container: key,
                missing: false,
            },
        );
    }

    /// Reads every file once; true when some file had more to read than
    /// its budget (poll again at once).
    pub(crate) fn poll_all(&mut self) -> bool {
        let mut busy = false;
        let mut gone = Vec::new();
        let reserve = self.tx.max_room() / 4;
        let budget = self.config.read_bytes;
        let now = Instant::now();
        for (path, f) in &mut self.files {
            let Some(c) = self.containers.get_mut(&f.container) else {
                continue;
            };
            let tx = &self.tx;
            let mut has_room = || tx.room() > reserve;
            let mut lines = Lines {
                tool: &self.tool,
                tx,
                container: c,
                stats: &mut self.stats,
                format: f.format,
                now,
            };
            let out = f
                .tailer
                .poll(budget, &mut has_room, &mut |seen| lines.on(seen));
            note(&self.stats, &out);
            busy |= out.bytes as usize >= budget || out.stopped;
            if out.gone || (f.missing && out.bytes == 0) {
                gone.push(path.clone());
            } else if let Some((inode, offset)) = f.tailer.checkpoint() {
                self.checkpoints.set(path, Position { inode, offset });
            }
        }
        for path in gone {
            self.files.remove(&path);
            tracing::debug!(path = %path.display(), "container log gone");
        }
        let files = &self.files;
        self.checkpoints.retain(|p| files.contains_key(p));
        let buffered: usize = self.files.values().map(|f| f.tailer.buffered()).sum();
        self.stats.buffered.set(buffered as i64);
        self.stats.files.set(self.files.len() as i64);
        busy
    }

    fn save(&mut self) {
        if let Err(e) = self.checkpoints.save() {
            tracing::warn!("container logs: saving the checkpoints: {e}");
            self.stats.checkpoint_errors.inc();
        }
    }

    /// Sends the pattern counts since the last report as samples.
    fn report(&mut self, elapsed: Duration) {
        let mut samples = Vec::new();
        for c in self.containers.values_mut() {
            for (level, pattern, n) in c.patterns.take() {
                let mut labels = vec![("level", level.as_str().to_owned()), ("pattern", pattern)];
                labels.extend(c.workload.labels().map(|(k, v)| (k, v.to_owned())));
                samples.push(Sample {
                    metric: MESSAGES,
                    labels,
                    value: SampleValue::Delta(n),
                });
            }
        }
        if samples.is_empty() {
            return;
        }
        self.tx.send(Message::Samples(SampleBatch {
            source: TOOL,
            interval_s: elapsed.as_secs_f64(),
            samples,
        }));
    }
}

/// Counts what a poll did besides lines.
fn note(stats: &Stats, out: &PollOutcome) {
    stats.rotations.add(u64::from(out.rotated));
    stats.truncated_files.add(u64::from(out.truncated_file));
    stats.cut_lines.add(u64::from(out.cut_lines));
}

/// Handles the lines of one file's poll.
struct Lines<'a> {
    tool: &'a Arc<str>,
    tx: &'a PipelineTx,
    container: &'a mut ContainerLogs,
    stats: &'a mut Stats,
    format: LogFormat,
    now: Instant,
}

impl Lines<'_> {
    fn on(&mut self, seen: Seen<'_>) {
        let line = match seen {
            Seen::Malformed(why) => return self.stats.malformed(self.format, why),
            Seen::Line(line) => line,
        };
        self.stats.line(self.format);
        let insight = understand(&line.text);
        let c = &mut *self.container;
        let before = c.patterns.overflowed;
        c.patterns.count(insight.level, &insight.pattern);
        c.stats.overflow.add(c.patterns.overflowed - before);
        if c.limit.decide(self.now) == Decision::Drop {
            c.stats.rate_limited.inc();
            return;
        }
        let record = ToolRecord {
            tool: self.tool.clone(),
            record: Record::Event(log_event(self.tool.clone(), &line, insight)),
            workload: Some(c.workload.clone()),
        };
        if !self.tx.send(Message::Record(record)) {
            c.stats.pipeline_full.inc();
        }
    }
}

/// The event of one line: kind `log`, the runtime's time stamp, the body
/// (control bytes escaped), level, pattern, stream and trace ids.
pub fn log_event(tool: Arc<str>, line: &JoinedLine<'_>, insight: Insight) -> Event {
    let mut ev = Event::new(tool, EventKind::Log);
    ev.ts_ns = line.ts_ns.unwrap_or_else(crate::host::now_ns);
    ev.fields.reserve(6);
    ev.push(
        fields::LOG_BODY,
        Value::Str(escape_lossy(&line.text).into()),
    );
    ev.push(fields::LOG_LEVEL, Value::Str(insight.level.as_str().into()));
    ev.push(
        fields::LOG_PATTERN,
        Value::Str(insight.pattern.text.into_boxed_str()),
    );
    ev.push(fields::LOG_STREAM, Value::Str(line.stream.as_str().into()));
    if let Some(t) = insight.trace.trace_id {
        ev.push(fields::TRACE_ID, Value::Str(to_hex(&t).into()));
    }
    if let Some(s) = insight.trace.span_id {
        ev.push(fields::SPAN_ID, Value::Str(to_hex(&s).into()));
    }
    ev
}

/// The container a file belongs to: its id, else its directory.
fn container_key(file: &LogFile) -> String {
    match file.workload.label(model::labels::CONTAINER_ID) {
        Some(id) => id.to_owned(),
        None => file
            .path
            .parent()
            .map_or_else(String::new, |p| p.display().to_string()),
    }
}

/// The `container` label of the drop counters: name, else short id.
fn display_name(w: &Workload, key: &str) -> String {
    if let Some(c) = &w.container {
        return c
            .name
            .clone()
            .unwrap_or_else(|| c.id.chars().take(12).collect());
    }
    match &w.pod {
        Some(p) => format!("{}/{}", p.name.as_deref().unwrap_or(&p.uid), key_tail(key)),
        None => key.to_owned(),
    }
}

fn key_tail(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
