//! The cost of watching, end to end against the real kernel: the agent
//! measures its own cost live (`eunomia_overhead_*`, `eunomia status`),
//! counts syscalls sampled when asked (scaled, marked as estimates), and
//! holds a CPU budget set below what it costs under load.

mod hotpath_support;
mod http_support;

use std::{
    fs,
    process::{Child, Command},
    time::{Duration, Instant},
};

use eunomia_tests::{Agent, eunomia, kernel_lock, kernel_tests_can_run, temp_dir};
use http_support::{get_here, serve_here};
use serde_json::Value;

const ATTACHED: &str = "hot path attached";

/// A config file with `body`, in a fresh directory.
fn config(name: &str, body: &str) -> String {
    let dir = temp_dir(name);
    let path = dir.join("eunomia.toml");
    fs::write(&path, body).expect("write config");
    path.to_string_lossy().into_owned()
}

/// `eunomia status --json` of the test's agent.
fn status() -> Value {
    let out = eunomia()
        .args(["status", "--json"])
        .output()
        .expect("run eunomia status");
    assert!(out.status.success(), "status failed: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The value of self-metric `name` whose labels include `labels`.
fn metric(status: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    status["self_metrics"]
        .as_array()?
        .iter()
        .find(|m| {
            m["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| m["labels"][*k].as_str() == Some(*v))
        })
        .and_then(|m| m["value"].as_f64())
}

/// getppid loops until killed, one per CPU given (the load whose syscalls
/// the probe counts); killed when dropped.
struct Load(Vec<Child>);

impl Load {
    fn start() -> Load {
        Self::on(&["1"])
    }

    fn on(cpus: &[&str]) -> Load {
        let loops = cpus
            .iter()
            .map(|cpu| {
                Command::new("taskset")
                    .args([
                        "-c",
                        cpu,
                        env!("CARGO_BIN_EXE_syscall-loop"),
                        "100000000000",
                    ])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("start syscall-loop")
            })
            .collect();
        Load(loops)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `steps` budget steps are in force, the last one `action`,
/// counted once as a degrade step; the status then.
fn wait_steps(steps: f64, action: &str) -> Value {
    let s = wait_status("the steps in force", Duration::from_secs(30), |s| {
        metric(s, "eunomia_budget_degraded_steps", &[]) == Some(steps)
    });
    assert_eq!(
        metric(
            &s,
            "eunomia_budget_actions_total",
            &[("action", action), ("direction", "degrade")],
        ),
        Some(1.0),
        "{action} counted once"
    );
    s
}

/// Polls `eunomia status --json` until `check` is true; panics with the
/// last status after `timeout`.
fn wait_status(what: &str, timeout: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status();
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen in {timeout:?}; last status: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_agent_measures_its_own_cost_live() {
    if !kernel_tests_can_run("the_agent_measures_its_own_cost_live") {
        return;
    }
    let _serial = kernel_lock();
    let cfg = config(
        "cost-live",
        "[agent]\npoll_interval = \"1s\"\n[tools]\nenabled = [\"execsnoop\"]\n[rules]\nenabled = false\n",
    );
    let mut agent = Agent::start(&["run", "--config", &cfg]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let load = Load::start();
    let s = wait_status(
        "the probe's and the tool's costs",
        Duration::from_secs(60),
        |s| {
            metric(
                s,
                "eunomia_overhead_bpf_seconds_per_run",
                &[("component", "agent"), ("program", "count_sys_exit")],
            )
            .is_some_and(|v| v > 0.0)
                && metric(
                    s,
                    "eunomia_overhead_process_cpu_seconds_total",
                    &[("component", "tool/execsnoop")],
                )
                .is_some()
        },
    );
    drop(load);
    let per_run = metric(
        &s,
        "eunomia_overhead_bpf_seconds_per_run",
        &[("component", "agent"), ("program", "count_sys_exit")],
    )
    .unwrap();
    let runs = metric(
        &s,
        "eunomia_overhead_bpf_runs_total",
        &[("component", "agent"), ("program", "count_sys_exit")],
    )
    .unwrap_or(0.0);
    let total = metric(&s, "eunomia_overhead_cpu_ratio", &[("component", "total")]).unwrap();
    println!(
        "count_sys_exit: {:.0} ns/run, {runs:.0} runs; total {:.2}% of the machine",
        per_run * 1e9,
        total * 100.0
    );
    // a few tens of ns per syscall; anything over 10 µs is not a measurement
    assert!(per_run < 10e-6, "count_sys_exit {per_run} s per run");
    // a busy getppid loop makes millions of syscalls per second
    assert!(runs > 100_000.0, "count_sys_exit ran {runs} times");
    assert!(total > 0.0 && total < 1.0, "total ratio {total}");
    assert!(
        metric(
            &s,
            "eunomia_overhead_process_cpu_seconds_total",
            &[("component", "agent")]
        )
        .is_some(),
        "no agent process CPU in {s:#}"
    );
    assert!(
        metric(
            &s,
            "eunomia_overhead_process_cpu_seconds_total",
            &[("component", "tool/execsnoop")]
        )
        .is_some(),
        "no execsnoop process CPU in {s:#}"
    );
    let text = eunomia().arg("status").output().expect("eunomia status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("overhead:") && text.contains("count_sys_exit") && text.contains("ns/run"),
        "status text without the overhead:\n{text}"
    );
    agent.signal(libc::SIGINT);
    let (code, _) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
}

/// Sums the `getppid` counts of every interval the agent printed as JSON.
fn getppid_total(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| v["top"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["syscall"] == "getppid")
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn sampled_counting_scales_its_counts() {
    if !kernel_tests_can_run("sampled_counting_scales_its_counts") {
        return;
    }
    let _serial = kernel_lock();
    // each call followed by about a microsecond of user work: a loop of
    // nothing but syscalls slows down by what the probe adds while it is
    // attached (about half its rate here), which the scaled estimate cannot
    // know (docs/metrics.md: sampled counts of syscall-bound processes are low)
    const CALLS: u64 = 2_000_000;
    const WORK: &str = "3000";
    let cfg = config(
        "cost-sampled",
        "[hotpath]\nsyscalls = \"sampled\"\ntcp = false\n[tools]\nenabled = []\n[rules]\nenabled = false\n",
    );
    let mut agent = Agent::start(&[
        "run",
        "--config",
        &cfg,
        "--interval",
        "1s",
        "--json",
        "--top",
        "50",
    ]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(20));
    let start = Instant::now();
    let out = Command::new("taskset")
        .args([
            "-c",
            "1",
            env!("CARGO_BIN_EXE_syscall-loop"),
            &CALLS.to_string(),
            "--work",
            WORK,
        ])
        .output()
        .expect("run syscall-loop");
    assert!(out.status.success());
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(2500));
    agent.signal(libc::SIGINT);
    let (code, lines) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let counted = getppid_total(&lines);
    println!("sampled: {counted} getppid counted for {CALLS} made in {took:?}");
    // 10% of the time, scaled: an estimate, within a third for a steady
    // loop of a few seconds (other processes' getppid add a little)
    assert!(
        counted > CALLS * 2 / 3 && counted < CALLS * 4 / 3,
        "estimated {counted} getppid for {CALLS} made"
    );
}

/// The number after `key=` in a log line (quoted or not).
fn log_field(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    let value = rest.trim_start_matches('"');
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// The share of the machine the agent's syscall probe ran, last interval.
fn probe_ratio(s: &Value) -> Option<f64> {
    metric(
        s,
        "eunomia_overhead_bpf_cpu_ratio",
        &[("component", "agent"), ("program", "count_sys_exit")],
    )
}

#[test]
fn a_cpu_budget_below_the_cost_is_honoured() {
    if !kernel_tests_can_run("a_cpu_budget_below_the_cost_is_honoured") {
        return;
    }
    let _serial = kernel_lock();
    // far below anything the agent can cost (its exact syscall probe under a
    // busy getppid loop costs a few % of the machine, its process more than
    // this): the budget must degrade, however loaded the machine is. The
    // HTTP capture is off, so the first step is sampling the syscalls
    // (`a_budget_pauses_the_http_capture_first` has it on)
    const BUDGET_PERCENT: f64 = 0.001;
    let cfg = config(
        "cost-budget",
        &format!(
            "[agent]\npoll_interval = \"1s\"\ncpu_budget = {BUDGET_PERCENT}\n\
             [hotpath]\ntcp = false\n[tools]\nenabled = []\n[rules]\nenabled = false\n\
             [http]\nenabled = false\n"
        ),
    );
    let _load = Load::start();
    let mut agent = Agent::start(&["run", "--config", &cfg]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(30));
    // the step, logged with the cost that made it (the BPF part: the probe)
    agent.wait_for_stderr("action=\"sample_syscalls\"", Duration::from_secs(90));
    let line = agent.stderr_seen.last().cloned().unwrap_or_default();
    assert!(
        line.contains("CPU budget: cost above the budget") && line.contains("WARN"),
        "the degrade step's log line: {line}"
    );
    let before = log_field(&line, "bpf_percent").expect("bpf_percent in the log line") / 100.0;
    let cost_before = log_field(&line, "cost_percent").expect("cost_percent") / 100.0;
    assert!(before > 0.0, "the probe's cost before the step: {line}");
    // exported: the step counted, in force (nothing recovers under this budget)
    let s = wait_steps(1.0, "sample_syscalls");
    assert!(
        metric(&s, "eunomia_budget_cpu_ratio", &[]).is_some_and(|b| b < 1e-4),
        "the budget exported"
    );
    // measured again with the probe attached a tenth of the time: a tenth of
    // the cost for the same load (half is the bound, for a load that gets
    // more CPU after the step than before on a busy machine), and less in all
    let total = |s: &Value| metric(s, "eunomia_overhead_cpu_ratio", &[("component", "total")]);
    let after = wait_status(
        "the cost lower after the step",
        Duration::from_secs(90),
        |s| {
            probe_ratio(s).is_some_and(|r| r < before / 2.0)
                && total(s).is_some_and(|t| t < cost_before)
        },
    );
    let after_probe = probe_ratio(&after).unwrap();
    let after_total = metric(
        &after,
        "eunomia_overhead_cpu_ratio",
        &[("component", "total")],
    );
    println!(
        "budget {BUDGET_PERCENT}%: before the step {:.3}% in all, {:.3}% in BPF; after: probe {:.3}%, {:.3}% in all",
        cost_before * 100.0,
        before * 100.0,
        after_probe * 100.0,
        after_total.unwrap() * 100.0,
    );
    agent.signal(libc::SIGINT);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
}

/// With the HTTP capture on, a budget below the cost pauses the capture
/// first: requests made then are not captured. Only then is syscall
/// counting sampled (the capture runs in the syscall probe): before, the
/// budget's first step was a sampling step the probe refused, logged and
/// counted all the same.
#[test]
fn a_budget_pauses_the_http_capture_first() {
    if !kernel_tests_can_run("a_budget_pauses_the_http_capture_first") {
        return;
    }
    let _serial = kernel_lock();
    let cfg = config(
        "cost-budget-http",
        "[agent]\npoll_interval = \"1s\"\ncpu_budget = 0.001\n\
         [hotpath]\ntcp = false\n[http]\nenabled = true\n[tools]\nenabled = []\n\
         [rules]\nenabled = false\n",
    );
    let _load = Load::start();
    let mut agent = Agent::start(&["run", "--config", &cfg]);
    agent.wait_for_stderr("the HTTP capture is paused first", Duration::from_secs(30));
    agent.wait_for_stderr("action=\"pause_http\"", Duration::from_secs(60));
    let records = |s: &Value| metric(s, "eunomia_http_records_total", &[]);
    let before = wait_status("the HTTP source's count", Duration::from_secs(10), |s| {
        records(s).is_some()
    });
    let server = serve_here();
    let paths: Vec<String> = (0..200).map(|i| format!("/paused/{i}")).collect();
    let statuses = get_here(server.port, &[], &paths);
    assert_eq!(statuses.len(), 200, "the requests were answered");
    // two drains and a poll interval later
    std::thread::sleep(Duration::from_secs(3));
    let s = status();
    assert_eq!(
        records(&s),
        records(&before),
        "no request captured while paused"
    );
    assert_eq!(
        metric(
            &s,
            "eunomia_budget_actions_total",
            &[("action", "pause_http"), ("direction", "degrade")],
        ),
        Some(1.0)
    );
    // the next step: syscall counting sampled, which the probe now takes
    agent.wait_for_stderr("action=\"sample_syscalls\"", Duration::from_secs(60));
    agent.wait_for_stderr(
        "syscall counting switched mode=\"sampled\"",
        Duration::from_secs(30),
    );
    wait_steps(2.0, "sample_syscalls");
    agent.signal(libc::SIGINT);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
}

/// Syscall tracepoints that processes `pids` hold, from `bpftool perf
/// list`, but the hot path's syscall counter (`sys_exit`, the floor): any
/// `sys_enter` hook, or a `sys_exit_*` one.
fn syscall_tracepoints_of(pids: &[u32]) -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["perf", "list", "--json"])
        .output()
        .expect("run bpftool");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["pid"]
                .as_u64()
                .is_some_and(|p| pids.contains(&(p as u32)))
        })
        .filter_map(|e| e["tracepoint"].as_str())
        .filter(|t| t.starts_with("sys_enter") || t.starts_with("sys_exit_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_cheap_tool_set_sees_execs_and_mounts_without_syscall_tracepoints() {
    if !kernel_tests_can_run("the_cheap_tool_set_sees_execs_and_mounts_without_syscall_tracepoints")
    {
        return;
    }
    let _serial = kernel_lock();
    // the cheap tool set (docs/performance.md) and the default rules
    // and a rule on mounts of one directory (the hot path reports them)
    let mnt = eunomia_tests::temp_dir("cost-mount");
    let rules = mnt.join("mounts.toml");
    let target = mnt.join("target");
    fs::create_dir_all(&target).expect("mount point");
    let target = target.to_string_lossy().into_owned();
    fs::write(
        &rules,
        format!(
            "[[rule]]\nname = \"Probe mount\"\ncondition = 'event.kind = mount and mount.target = \"{target}\"'\n\
             severity = \"notice\"\noutput = \"{{mount.op}} {{mount.source}} {{mount.fs}} {{mount.flags}} {{proc.comm}} {{ret}}\"\n"
        ),
    )
    .expect("write rules");
    let cfg = config(
        "cost-default",
        &format!(
            "[agent]\npoll_interval = \"1s\"\n[tools]\nenabled = [\"exitsnoop\", \"tcpstates\", \"sigsnoop\"]\n\
             [rules]\nfiles = [\"{}\"]\n",
            rules.display()
        ),
    );
    let mut agent = Agent::start(&["run", "--config", &cfg, "--json"]);
    agent.wait_for_stderr(ATTACHED, Duration::from_secs(30));
    wait_status("the default tools running", Duration::from_secs(60), |s| {
        ["exitsnoop", "tcpstates", "sigsnoop"].iter().all(|t| {
            metric(
                s,
                "eunomia_overhead_process_cpu_seconds_total",
                &[("component", &format!("tool/{t}"))],
            )
            .is_some()
        })
    });
    let mut pids = vec![agent.pid()];
    pids.extend(eunomia_tests::children_of(agent.pid()));
    let hooks = syscall_tracepoints_of(&pids);
    assert!(
        hooks.is_empty(),
        "the agent with the cheap tool set (pids {pids:?}) holds syscall tracepoints: {hooks:?}"
    );
    // an exec from a temporary directory: seen by the hot path, the rule fires
    let dir = eunomia_tests::temp_dir("cost-exec");
    let exe = dir.join("probe-true");
    fs::copy("/bin/true", &exe).expect("copy /bin/true");
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = exe.to_string_lossy().into_owned();
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        let child = Command::new(&exe).arg("marker-arg").status();
        assert!(child.expect("run the probe").success());
        let lines = agent.stdout_until(Duration::from_secs(2), |l| {
            l.last().is_some_and(|l| l.contains(&path))
        });
        seen = lines.into_iter().find(|l| l.contains(&path));
    }
    let line = seen.unwrap_or_else(|| panic!("no alert for {path} in 30 s"));
    let alert: Value = serde_json::from_str(&line).expect("JSON alert");
    assert_eq!(
        alert["rule"], "Process executed from a temporary directory",
        "{line}"
    );
    assert_eq!(alert["proc.args"], format!("{path} marker-arg"), "{line}");
    assert_eq!(alert["proc.comm"], "probe-true", "{line}");
    // the pid in its own pid namespace: the host's, so the same pid
    assert!(alert["proc.vpid"].is_u64(), "{line}");
    assert_eq!(alert["proc.vpid"], alert["proc.pid"], "{line}");
    // a mount and its umount (in a private mount namespace): seen by the
    // hot path's syscall probe, no mountsnoop
    let script = format!("mount -t tmpfs -o ro eunomia-probe {target} && umount {target}");
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .expect("run unshare");
    assert!(ok.success(), "{script}");
    let lines = agent.stdout_until(Duration::from_secs(20), |l| {
        l.iter().filter(|l| l.contains("Probe mount")).count() >= 2
    });
    let mounts: Vec<Value> = lines
        .iter()
        .filter(|l| l.contains("Probe mount"))
        .map(|l| serde_json::from_str(l).expect("JSON alert"))
        .collect();
    let mount = mounts
        .iter()
        .find(|a| a["mount.op"] == "mount")
        .unwrap_or_else(|| panic!("no mount alert: {lines:#?}"));
    assert_eq!(mount["tool"], "hotpath.mount", "{mount}");
    assert_eq!(
        mount["output"], "mount eunomia-probe tmpfs MS_RDONLY mount 0",
        "{mount}"
    );
    let umount = mounts
        .iter()
        .find(|a| a["mount.op"] == "umount")
        .unwrap_or_else(|| panic!("no umount alert: {lines:#?}"));
    assert_eq!(umount["proc.comm"], "umount", "{umount}");
    agent.signal(libc::SIGINT);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&mnt);
}
