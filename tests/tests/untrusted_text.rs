//! Text from tools is untrusted input (issue 15), end to end: the real agent
//! runs the real execsnoop, opensnoop and exitsnoop while an unprivileged
//! user the test creates puts newlines into argv, a file name and `comm`.
//! No event or alert may then name another pid, uid or comm, the attacker's
//! own events carry the whole strings, escaped, and 1,000 ordinary execs and
//! opens with unusual but legal strings still arrive intact.

use std::{
    collections::HashSet,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use eunomia_tests::{Agent, kernel_lock, kernel_tests_can_run, temp_dir};
use serde_json::Value;

const USER: &str = "eunomia-untrusted";

/// The uid of the test's unprivileged user, created if missing.
fn attacker_uid() -> u32 {
    let _ = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell", "/bin/sh", USER])
        .stderr(Stdio::null())
        .status();
    let out = Command::new("id").args(["-u", USER]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Runs `argv` as the unprivileged user.
fn as_attacker(uid: u32, argv: &[&str]) {
    let status = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--",
        ])
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let _ = status;
}

/// What the agent counted as not delivered for `tool` so far (the tool's
/// own lost events, records rejected or dropped), from the sink's metrics.
fn not_delivered(path: &Path, tool: &str) -> u64 {
    let mut last = std::collections::HashMap::new();
    for l in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let name = v["name"].as_str().unwrap_or("");
        let counted = [
            "eunomia_tool_lost_events_total",
            "eunomia_tool_rejected_records_total",
            "eunomia_tool_dropped_total",
        ];
        if v["type"] == "metric" && counted.contains(&name) && v["labels"]["tool"] == tool {
            let key = format!("{name}{}", v["labels"]);
            last.insert(key, v["value"].as_f64().unwrap_or(0.0) as u64);
        }
    }
    last.values().sum()
}

/// The events the JSON-lines sink wrote so far.
fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "event" || v["record"] == "event")
        .collect()
}

fn str_of<'a>(ev: &'a Value, key: &str) -> &'a str {
    ev[key].as_str().unwrap_or("")
}

/// Waits until `done(events)` or `timeout`; returns the last events.
fn wait_events(
    path: &Path,
    timeout: Duration,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let evs = events(path);
        if done(&evs) || Instant::now() > deadline {
            return evs;
        }
        thread::sleep(Duration::from_millis(300));
    }
}

const FORGED_EXEC: &str =
    "x\n02:55:00 0     forged-by-nobo 4242   1        0 /tmp/forged-by-nobody --payload";
const FORGED_OPEN: &str =
    "y\n03:11:30 0       4244   sshd-fake2         3   0 00000000 /etc/shadow";
const FORGED_COMM: &str = "n\n02:55:00 0 a";
const RENAMED: &str = "r\nforged-exit";

#[test]
fn unprivileged_text_cannot_forge_events_and_arrives_whole() {
    if !kernel_tests_can_run("unprivileged_text_cannot_forge_events_and_arrives_whole") {
        return;
    }
    let _serial = kernel_lock();
    let uid = attacker_uid();
    let dir = temp_dir("untrusted");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sink = dir.join("events.jsonl");
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"execsnoop\", \"opensnoop\", \"exitsnoop\", \"mountsnoop\"]\n\
             [sinks.jsonl]\nenabled = true\npath = \"{}\"\ninterval = \"1s\"\nqueue = 200000\n",
            sink.display()
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&[
        "run",
        "--json",
        "--for",
        "120s",
        "--config",
        config.to_str().unwrap(),
    ]);
    for _ in 0..4 {
        agent.wait_for_stderr("first output", Duration::from_secs(30));
    }
    // a payload whose name (and so comm at exec) holds a newline
    let comm_exe = dir.join(FORGED_COMM);
    std::fs::copy("/bin/true", &comm_exe).unwrap();
    let open_path = dir.join(FORGED_OPEN);
    // lines that name a real process (pid 1) with its real comm and uid
    let init = std::fs::read_to_string("/proc/1/comm")
        .unwrap()
        .trim()
        .to_owned();
    let real_open = dir.join(format!(
        "z\n03:11:30 0       1      {init:<16}   3   0 00000000 /etc/shadow"
    ));
    let mnt_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let mnt_ns = mnt_ns
        .to_str()
        .unwrap()
        .trim_start_matches("mnt:[")
        .trim_end_matches(']');
    let real_umount =
        format!("c\n05:00:00 {init:<16} 1       1       {mnt_ns:<11} umount(\"/\", 0x0) = 0\nd");
    let umount = format!(
        "import ctypes; ctypes.CDLL(None).umount({:?}.encode())",
        real_umount
    );
    let rename = format!(
        "import ctypes; ctypes.CDLL(None).prctl(15, {:?}.encode(), 0, 0, 0)",
        RENAMED
    );
    let attack = || {
        as_attacker(uid, &["/bin/echo", FORGED_EXEC]);
        as_attacker(uid, &["/bin/cat", open_path.to_str().unwrap()]);
        as_attacker(uid, &[comm_exe.to_str().unwrap()]);
        as_attacker(uid, &["/usr/bin/python3", "-c", &rename]);
        as_attacker(uid, &["/bin/cat", real_open.to_str().unwrap()]);
        // umount(8) refuses a user before the syscall; umount(2) is traced
        as_attacker(uid, &["/usr/bin/python3", "-c", &umount]);
    };
    let esc = |s: &str| s.replace('\n', "\\n");
    let (exec_args, open_esc, comm_esc, renamed_esc, real_open_esc, umount_esc) = (
        format!("/bin/echo {}", esc(FORGED_EXEC)),
        esc(open_path.to_str().unwrap()),
        esc(FORGED_COMM),
        esc(RENAMED),
        esc(real_open.to_str().unwrap()),
        esc(&real_umount),
    );
    let mine = |evs: &[Value]| -> [bool; 6] {
        let by_me = |e: &&Value| e["proc.uid"].as_u64().is_none_or(|u| u == u64::from(uid));
        let has = |key: &str, want: &str| evs.iter().filter(by_me).any(|e| str_of(e, key) == want);
        [
            has("proc.args", &exec_args),
            has("file.path", &open_esc),
            has("proc.comm", &comm_esc),
            evs.iter()
                .any(|e| e["kind"] == "exit" && str_of(e, "proc.comm") == renamed_esc),
            has("file.path", &real_open_esc),
            evs.iter()
                .any(|e| str_of(e, "mount.target") == umount_esc && e["proc.pid"] != 1),
        ]
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut evs = Vec::new();
    while Instant::now() < deadline {
        attack();
        evs = wait_events(&sink, Duration::from_secs(2), |e| {
            mine(e).iter().all(|x| *x)
        });
        if mine(&evs).iter().all(|x| *x) {
            break;
        }
    }
    assert_eq!(
        mine(&evs),
        [true; 6],
        "the attacker's own events, whole and escaped (exec args, open path, exec comm, renamed \
         exit, a path and a umount target forging records of pid 1)"
    );
    // nothing names the forged pids, comms or uid 0 for the attacker's lines
    for e in &evs {
        // a real process may hold pid 4242 or 4244 on a busy machine (pid_max
        // 32768 wraps in seconds under an exec storm): forged is one with
        // the fields the attacker's text gives them
        let pid = e["proc.pid"].as_u64();
        let forged_time = matches!(str_of(e, "tool_time"), "02:55:00" | "03:11:30");
        let forged_pid = match pid {
            Some(4242) => forged_time || e["proc.ppid"] == 1,
            Some(4244) => forged_time || str_of(e, "file.path") == "/etc/shadow",
            _ => false,
        };
        assert!(!forged_pid, "forged event: {e}");
        let forged_init = pid == Some(1)
            && (str_of(e, "file.path") == "/etc/shadow" || str_of(e, "mount.target") == "/");
        assert!(!forged_init, "forged event of pid 1: {e}");
        let comm = str_of(e, "proc.comm");
        assert!(
            !["forged-by-nobo", "sshd-fake2", "a", "forged-exit"].contains(&comm),
            "forged comm: {e}"
        );
        for v in e.as_object().unwrap().values() {
            if let Some(s) = v.as_str() {
                assert!(!s.chars().any(char::is_control), "raw control byte: {e}");
            }
        }
    }

    // 1,000 ordinary execs and opens with unusual but legal strings; on a busy
    // machine a tool's perf buffer may overflow, which it reports and the
    // agent counts: each one arrives intact or is counted, none is lost
    // silently
    let missed_before = (
        not_delivered(&sink, "execsnoop"),
        not_delivered(&sink, "opensnoop"),
    );
    let marker = format!("m{}", std::process::id());
    let names: Vec<String> = (0..1000)
        .map(|i| format!("{marker} {i} it's \"quoted\" ünï\tcode"))
        .collect();
    // paced, as the opens below: execsnoop's perf buffer would overflow (and
    // count) in a burst on a busy machine
    let spawner = format!(
        "import subprocess, time\nfor i in range(1000):\n    subprocess.run(['/bin/true', '{marker} %d' % i, \"it's\", '\"quoted\"', '\\u00fcn\\u00ef\\tcode']); time.sleep(0.003)\n"
    );
    assert!(
        Command::new("python3")
            .args(["-c", &spawner])
            .status()
            .unwrap()
            .success()
    );
    let files = dir.join("files");
    std::fs::create_dir(&files).unwrap();
    // paced: opensnoop's perf buffer would overflow (and count) in a burst
    let opener = format!(
        "import sys, time\nfor n in sys.stdin.read().split('\\0'):\n    open({:?} + '/' + n, 'w').close(); time.sleep(0.004)\n",
        files.to_str().unwrap()
    );
    let mut py = Command::new("python3")
        .args(["-c", &opener])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = py.stdin.take().unwrap();
        stdin.write_all(names.join("\0").as_bytes()).unwrap();
    }
    assert!(py.wait().unwrap().success());
    let want_args: HashSet<String> = (0..1000)
        .map(|i| format!("/bin/true {marker} {i} it's \"quoted\" ünï\\tcode"))
        .collect();
    let want_paths: HashSet<String> = names
        .iter()
        .map(|n| esc(files.join(n).to_str().unwrap()).replace('\t', "\\t"))
        .collect();
    let count = |evs: &[Value]| {
        let args = evs
            .iter()
            .filter(|e| want_args.contains(str_of(e, "proc.args")))
            .map(|e| str_of(e, "proc.args").to_owned())
            .collect::<HashSet<_>>();
        let paths = evs
            .iter()
            .filter(|e| want_paths.contains(str_of(e, "file.path")))
            .map(|e| str_of(e, "file.path").to_owned())
            .collect::<HashSet<_>>();
        (args.len(), paths.len())
    };
    let evs = wait_events(&sink, Duration::from_secs(30), |e| count(e) == (1000, 1000));
    let (execs, opens) = count(&evs);
    thread::sleep(Duration::from_millis(1500)); // the sink's last metrics
    let missed = (
        not_delivered(&sink, "execsnoop").saturating_sub(missed_before.0),
        not_delivered(&sink, "opensnoop").saturating_sub(missed_before.1),
    );
    eprintln!(
        "execs: {execs} intact, {} counted as missed; opens: {opens} intact, {} counted as missed",
        missed.0, missed.1
    );
    let odd: Vec<&str> = evs
        .iter()
        .map(|e| str_of(e, "file.path"))
        .filter(|p| p.contains(&marker) && !want_paths.contains(*p))
        .collect();
    agent.signal(libc::SIGTERM);
    let (code, _, stderr) = agent.finish_with_stderr(Duration::from_secs(30));
    let warnings: Vec<&String> = stderr.iter().filter(|l| l.contains("WARN")).collect();
    assert!(odd.is_empty(), "paths not as created: {odd:?}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        execs + missed.0 as usize >= 1000 && opens + missed.1 as usize >= 1000,
        "ordinary execs ({execs}) and opens ({opens}) that arrived intact, with {missed:?} \
         counted as missed; agent warnings: {warnings:#?}"
    );
    assert_eq!(code, 0);
}
