//! The rules end to end: the agent runs the real libbpf-tools, the default
//! rules fire on real actions on this machine (and stay quiet on their
//! benign twins), alerts reach the real Alertmanager (Debian's
//! `prometheus-alertmanager`) through its API v2, and rules reload on SIGHUP
//! while a reload with errors keeps the rules in force.
//!
//! The container rules (shell, listening socket, mount in a container) need
//! the enrichment stage; their evaluator tests run on parsed tool output in
//! `supervisor/src/rules/default_tests.rs`.

use std::{
    net::TcpStream,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use eunomia_tests::{alertmanager::Alertmanager, kernel_lock};
use serde_json::Value;

mod hotpath_support;
mod http_support;
mod rules_support;

use rules_support::*;

// ------------------------------------------------------------ tests

#[test]
fn alert_reaches_the_real_alertmanager() {
    if !can_run("alert_reaches_the_real_alertmanager", &["opensnoop"], true) {
        return;
    }
    let _serial = kernel_lock();
    let am = Alertmanager::start();
    let dir = TempDir::new("/tmp", "rules-am");
    let config = dir.path().join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"opensnoop\"]\n[rules]\nwatch_interval = \"0s\"\n[sinks.alertmanager]\nurl = \"{}\"\nflush_interval = \"200ms\"\nresolve_timeout = \"10m\"\n",
            am.url()
        ),
    )
    .unwrap();
    let agent = AgentRun::start(&config);
    let mut found = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while found.is_none() && Instant::now() < deadline {
        run("cat", &["/etc/shadow"]);
        run("cat", &["/etc/hostname"]);
        thread::sleep(Duration::from_millis(500));
        found = am
            .alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "Sensitive file opened");
    }
    let alert = found.unwrap_or_else(|| panic!("no alert in Alertmanager\n{}", agent.dump()));
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "error", "{alert}");
    assert_eq!(labels["source"], "eunomia");
    assert_eq!(labels["fingerprint"].as_str().map(str::len), Some(16));
    assert!(labels["instance"].as_str().is_some_and(|s| !s.is_empty()));
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("/etc/shadow") && summary.contains("cat"),
        "{summary}"
    );
    // The rule's description travels with the alert (rules/default.toml).
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("password database")),
        "{alert}"
    );
    let event: Value =
        serde_json::from_str(alert["annotations"]["event"].as_str().unwrap()).unwrap();
    assert_eq!(event["file.path"], "/etc/shadow");
    let span = rfc3339_secs(alert["endsAt"].as_str().unwrap())
        - rfc3339_secs(alert["startsAt"].as_str().unwrap());
    assert!(
        (590..=610).contains(&span),
        "endsAt - startsAt = {span}s, want the 10m resolve timeout"
    );
    assert!(
        !am.alerts().iter().any(|a| a["annotations"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("/etc/hostname")),
        "a benign open alerted"
    );
    // the console got it too
    assert!(has_alert(
        &agent.alerts(),
        "Sensitive file opened",
        "file.path",
        &"/etc/shadow".into()
    ));
    assert_eq!(agent.stop(), 0);
}

/// Seconds since the epoch of `2026-12-01T16:53:30.123Z`-style times (UTC).
fn rfc3339_secs(t: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    // days from civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

#[test]
fn default_rules_fire_on_real_actions() {
    let tools = ["execsnoop", "opensnoop", "killsnoop", "tcpstates"];
    if !can_run("default_rules_fire_on_real_actions", &tools, false) {
        return;
    }
    let _serial = kernel_lock();
    let dir = TempDir::new("/tmp", "rules-e2e");
    let suid_dir = TempDir::new("/usr/local/libexec", "rules-e2e");
    let config = dir.path().join("eunomia.toml");
    std::fs::write(
        &config,
        "[tools]\nenabled = [\"execsnoop\", \"opensnoop\", \"killsnoop\", \"tcpstates\"]\n[rules]\nwatch_interval = \"0s\"\n",
    )
    .unwrap();
    // a payload in /tmp, and a setuid-root copy of setpriv
    let payload = dir.path().join("payload");
    std::fs::copy("/bin/true", &payload).unwrap();
    let suid = suid_dir.path().join("suid-setpriv");
    std::fs::copy("/usr/bin/setpriv", &suid).unwrap();
    run("chmod", &["4755", suid.to_str().unwrap()]);
    let bin_file = format!("/usr/local/bin/eunomia-e2e-{}", std::process::id());

    let agent = AgentRun::start(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = |alerts: &[Value]| -> Vec<&'static str> {
        let mut missing = Vec::new();
        let checks: [(&str, &str, Value); 6] = [
            ("Sensitive file opened", "file.path", "/etc/shadow".into()),
            (
                "Write below a binary directory",
                "file.path",
                bin_file.clone().into(),
            ),
            (
                "Process executed from a temporary directory",
                "proc.comm",
                "payload".into(),
            ),
            (
                "Outbound connection to a suspicious port",
                "net.dport",
                4444.into(),
            ),
            (
                "Privilege change via setuid binary",
                "proc.comm",
                "true".into(),
            ),
            (
                "Kill signal to another user's process",
                "signal.num",
                15.into(),
            ),
        ];
        for (rule, field, value) in checks {
            if !has_alert(alerts, rule, field, &value) {
                missing.push(rule);
            }
        }
        missing
    };
    let mut missing = vec!["(not run)"];
    while !missing.is_empty() && Instant::now() < deadline {
        act(&payload, &suid, &bin_file);
        thread::sleep(Duration::from_millis(700));
        missing = wanted(&agent.alerts());
    }
    let _ = std::fs::remove_file(&bin_file);
    let alerts = agent.alerts();
    assert!(
        missing.is_empty(),
        "rules that did not fire: {missing:?}\n{}",
        agent.dump()
    );
    // the benign twins stayed quiet
    assert!(!has_alert(
        &alerts,
        "Sensitive file opened",
        "file.path",
        &"/etc/hostname".into()
    ));
    assert!(!has_alert(
        &alerts,
        "Write below a binary directory",
        "file.path",
        &"/usr/bin/true".into()
    ));
    assert!(!has_alert(
        &alerts,
        "Process executed from a temporary directory",
        "proc.comm",
        &"true".into()
    ));
    assert!(!has_alert(
        &alerts,
        "Outbound connection to a suspicious port",
        "net.dport",
        &443.into()
    ));
    assert!(
        !alerts
            .iter()
            .any(|a| a["rule"] == "Privilege change via setuid binary" && a["proc.uid"] != 0),
        "a uid drop alerted"
    );
    assert_eq!(agent.stop(), 0);
}

/// One round of real actions: each rule's trigger and its benign twin.
fn act(payload: &Path, suid: &Path, bin_file: &str) {
    // sensitive file / benign file
    run("cat", &["/etc/shadow"]);
    run("cat", &["/etc/hostname"]);
    // write below a binary directory / read one
    run("sh", &["-c", &format!("echo x > {bin_file}")]);
    run("cat", &["/usr/bin/true"]);
    // exec from /tmp / exec with /tmp only as an argument
    run(payload.to_str().unwrap(), &[]);
    run("/bin/true", &["/tmp/x"]);
    // outbound connection to 4444 / to 443 (refused either way)
    let _ = TcpStream::connect_timeout(
        &"127.0.0.1:4444".parse().unwrap(),
        Duration::from_millis(200),
    );
    let _ = TcpStream::connect_timeout(
        &"127.0.0.1:443".parse().unwrap(),
        Duration::from_millis(200),
    );
    // nobody runs a setuid-root binary that becomes root / root drops to nobody
    run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            suid.to_str().unwrap(),
            "--reuid=0",
            "--regid=0",
            "--clear-groups",
            "/bin/true",
        ],
    );
    run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/bin/true",
        ],
    );
    // nobody signals a process of uid 1001 / root does
    let mut victim = Command::new("setpriv")
        .args([
            "--reuid=1001",
            "--regid=1001",
            "--clear-groups",
            "sleep",
            "30",
        ])
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let pid = victim.id().to_string();
    run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "kill",
            "-TERM",
            &pid,
        ],
    );
    let _ = victim.kill();
    let _ = victim.wait();
}

#[test]
fn sighup_reloads_and_a_bad_reload_keeps_the_rules() {
    if !can_run(
        "sighup_reloads_and_a_bad_reload_keeps_the_rules",
        &["execsnoop"],
        false,
    ) {
        return;
    }
    let _serial = kernel_lock();
    let dir = TempDir::new("/tmp", "rules-reload");
    let rules = dir.path().join("mine.toml");
    let rule = |comm: &str| {
        format!(
            "[[rule]]\nname = \"marker {comm}\"\ncondition = 'event.kind = exec and proc.comm = \"{comm}\"'\nseverity = \"notice\"\noutput = \"{{proc.comm}} ran\"\n"
        )
    };
    std::fs::write(&rules, rule("mark-a")).unwrap();
    let config = dir.path().join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"execsnoop\"]\n[rules]\ndefaults = false\nfiles = [\"{}\"]\ndedup_window = \"0s\"\nwatch_interval = \"0s\"\n",
            rules.display()
        ),
    )
    .unwrap();
    for m in ["mark-a", "mark-b"] {
        std::fs::copy("/bin/true", dir.path().join(m)).unwrap();
    }
    let exec = |m: &str| run(dir.path().join(m).to_str().unwrap(), &[]);
    let count =
        |agent: &AgentRun, rule: &str| agent.alerts().iter().filter(|a| a["rule"] == rule).count();

    let agent = AgentRun::start(&config);
    wait_until(Duration::from_secs(30), "the first marker alert", || {
        exec("mark-a");
        count(&agent, "marker mark-a") > 0
    });

    // a broken file: the reload fails, with file:line:col, and mark-a still alerts
    std::fs::write(&rules, "[[rule]]\nname = \"x\"\ncondition = 'event.kind = exec and'\nseverity = \"notice\"\noutput = \"o\"\n").unwrap();
    agent.hup();
    wait_until(Duration::from_secs(10), "the failed reload", || {
        agent.stderr_has("rules reload failed")
    });
    let place = format!("{}:3:35: expected a field", rules.display());
    assert!(
        agent.stderr_has(&place),
        "no `{place}` in\n{}",
        agent.dump()
    );
    let before = count(&agent, "marker mark-a");
    wait_until(
        Duration::from_secs(10),
        "mark-a alerts after the failed reload",
        || {
            exec("mark-a");
            count(&agent, "marker mark-a") > before
        },
    );

    // a good file: the new rule replaces the old one
    std::fs::write(&rules, rule("mark-b")).unwrap();
    agent.hup();
    wait_until(Duration::from_secs(10), "the reload", || {
        agent.stderr_has("rules reloaded")
    });
    wait_until(Duration::from_secs(10), "mark-b alerts", || {
        exec("mark-b");
        count(&agent, "marker mark-b") > 0
    });
    let a_before = count(&agent, "marker mark-a");
    exec("mark-a");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&agent, "marker mark-a"),
        a_before,
        "the old rule is gone"
    );
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_rule_on_http_fields_fires_in_the_real_alertmanager() {
    if !can_run(
        "a_rule_on_http_fields_fires_in_the_real_alertmanager",
        &[],
        true,
    ) {
        return;
    }
    let _serial = kernel_lock();
    let am = Alertmanager::start();
    let dir = TempDir::new("/tmp", "rules-http");
    let rules = dir.path().join("http.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"Payment errors\"\n\
         condition = 'event.kind = http_server and http.response.status_code >= 500 and url.path startswith \"/status/503/pay\"'\n\
         severity = \"error\"\n\
         output = \"{http.request.method} {url.path} answered {http.response.status_code}\"\n",
    )
    .unwrap();
    let config = dir.path().join("eunomia.toml");
    // the default sampling: errors are always kept, so rules see them
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = []\n[http]\nenabled = true\n[rules]\ndefaults = false\nfiles = [\"{}\"]\nwatch_interval = \"0s\"\n\
             [sinks.alertmanager]\nurl = \"{}\"\nflush_interval = \"200ms\"\n",
            rules.display(),
            am.url()
        ),
    )
    .unwrap();
    let agent = AgentRun::start(&config);
    wait_until(Duration::from_secs(30), "the hot path", || {
        agent.stderr_has("hot path attached")
    });
    let server = http_support::serve_here();
    let addr = format!("127.0.0.1:{}", server.port);
    let get = |path: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_http-echo"))
            .args(["get", "--addr", &addr, path])
            .output()
            .expect("http-echo get");
        assert!(out.status.success(), "{out:?}");
    };
    let mut found = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while found.is_none() && Instant::now() < deadline {
        get("/status/503/pay/42");
        get("/status/200/pay/42");
        get("/status/503/other");
        thread::sleep(Duration::from_millis(500));
        found = am
            .alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "Payment errors");
    }
    let alert = found.unwrap_or_else(|| panic!("no alert in Alertmanager\n{}", agent.dump()));
    assert_eq!(alert["labels"]["severity"], "error", "{alert}");
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert_eq!(summary, "GET /status/503/pay/42 answered 503", "{alert}");
    let event: Value =
        serde_json::from_str(alert["annotations"]["event"].as_str().unwrap()).unwrap();
    assert_eq!(event["http.response.status_code"], 503, "{event}");
    assert_eq!(event["server.port"], server.port);
    assert_eq!(event["http.route"], "/status/{id}/pay/{id}");
    // only the 503s of /status/503/pay matched
    assert!(
        agent.alerts().iter().all(|a| a["output"]
            .as_str()
            .is_some_and(|o| o.contains("/pay/42 answered 503"))),
        "{}",
        agent.dump()
    );
    drop(server);
    assert_eq!(agent.stop(), 0);
}
