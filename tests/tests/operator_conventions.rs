//! The conventions operators bring (issue 20): the OpenTelemetry
//! environment variables, one rule for turning sinks on, a `config check`
//! that checks what `run` checks and says what is on, and one agent per
//! control socket.

use std::{path::Path, process::Output, time::Duration};

use eunomia_tests::{
    Agent, bpf_programs_of, eunomia, kernel_lock, kernel_tests_can_run,
    otlp::{OtlpReceiver, attr},
    temp_dir,
};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `eunomia ARGS...` with only `env` of the OTEL_* variables set.
fn eunomia_env(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = eunomia();
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .expect("run eunomia")
}

#[test]
fn config_check_shows_sinks_tools_rules_and_which_otel_variables_applied() {
    let dir = temp_dir("conventions-check");
    let rules = dir.join("mine.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"tmp exec\"\ndescription = \"a program ran from /tmp\"\ncondition = 'event.kind = exec and proc.args startswith \"/tmp/\"'\noutput = \"exec from /tmp\"\nseverity = \"warning\"\n",
    )
    .unwrap();
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[tools]\nenabled = [\"execsnoop\"]\n[rules]\nfiles = [{rules:?}]\n[sinks.otlp]\ntimeout = \"3s\"\n[sinks.prometheus]\nlisten = \"127.0.0.1:0\"\n[sinks.alertmanager]\nurl = \"http://127.0.0.1:9093\"\n[sinks.jsonl]\nenabled = false\n"
        ),
    )
    .unwrap();
    let out = eunomia_env(
        &["config", "check"],
        &config,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4999"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_SERVICE_NAME", "node-agent"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=hunter2"),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        &format!("{}: ok", config.display()),
        "tools:       execsnoop",
        &format!("{}", rules.display()),
        "sink:        otlp -> http://127.0.0.1:4999",
        "sink:        prometheus on http://127.0.0.1:0/metrics",
        "sink:        alertmanager -> http://127.0.0.1:9093",
        "OTEL_EXPORTER_OTLP_ENDPOINT applied: sinks.otlp.endpoint = http://127.0.0.1:4999",
        "OTEL_EXPORTER_OTLP_TIMEOUT not applied: the file sets sinks.otlp.timeout",
        "OTEL_SERVICE_NAME applied: agent.resource_attributes.\"service.name\" = node-agent",
        "OTEL_EXPORTER_OTLP_HEADERS applied: sinks.otlp.headers.api-key",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    assert!(!stdout.contains("jsonl"), "jsonl is off:\n{stdout}");
    assert!(
        !stdout.contains("hunter2"),
        "a header value shown:\n{stdout}"
    );

    // The shipped file sets no sink key, so the variable turns OTLP on there.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/eunomia.toml");
    let out = eunomia_env(
        &["config", "check"],
        &shipped,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4999")],
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("sink:        otlp -> http://127.0.0.1:4999"),
        "{stdout}{}",
        text(&out.stderr)
    );

    // OTEL_SDK_DISABLED turns the env-enabled sink off again.
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, "").unwrap();
    let out = eunomia_env(
        &["config", "check"],
        &plain,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4999"),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("sinks:       none"), "{stdout}");
}

/// A file name, its text, the environment, what the error must name.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn config_check_and_run_refuse_the_same_things_before_attaching() {
    let dir = temp_dir("conventions-refuse");
    let cases: [Case; 5] = [
        (
            "tool.toml",
            "[tools]\nenabled = [\"execsnop\"]\n",
            &[],
            "execsnop",
        ),
        (
            "rules.toml",
            "[rules]\nfiles = [\"/nonexistent/eunomia-rules.toml\"]\n",
            &[],
            "/nonexistent/eunomia-rules.toml",
        ),
        (
            "listen.toml",
            "[sinks.prometheus]\nlisten = \"192.0.2.1:9464\"\n",
            &[],
            "sinks.prometheus.listen",
        ),
        (
            "jsonl.toml",
            "[sinks.jsonl]\npath = \"/nonexistent/dir/out.jsonl\"\n",
            &[],
            "sinks.jsonl.path",
        ),
        (
            "env.toml",
            "",
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ];
    for (name, body, env, expect) in cases {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        for args in [
            &["config", "check"][..],
            &["run", "--for", "1s", "--config"][..],
        ] {
            let out = eunomia_env(args, &path, env);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {name}: {stderr}");
            assert!(stderr.contains(expect), "{args:?} {name}: {stderr}");
            assert!(
                !stderr.contains("hot path attached"),
                "{args:?} {name}: attached before refusing: {stderr}"
            );
        }
    }
}

#[test]
fn a_second_agent_on_the_same_socket_refuses_to_start() {
    if !kernel_tests_can_run("a_second_agent_on_the_same_socket_refuses_to_start") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("conventions-second");
    let socket = dir.join("eunomia.sock");
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"1s\"\ncontrol_socket = {:?}\n[tools]\nenabled = []\n[rules]\nconsole = false\n",
            socket.display().to_string()
        ),
    )
    .unwrap();
    let start = |for_: &str| {
        let mut cmd = eunomia();
        cmd.env_remove("EUNOMIA_SOCKET")
            .args(["run", "--for", for_, "--config"])
            .arg(&config);
        Agent::spawn(cmd)
    };
    let mut first = start("60s");
    first.wait_for_stderr("control API listening", Duration::from_secs(30));
    let second = start("60s");
    let second_pid = second.pid();
    let (code, _, stderr) = second.finish_with_stderr(Duration::from_secs(20));
    let stderr = stderr.join("\n");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "the running agent's pid not named: {stderr}"
    );
    assert!(!stderr.contains("hot path attached"), "{stderr}");
    assert!(bpf_programs_of(second_pid).is_empty());
    // The first one is unharmed and still serves its socket.
    assert!(socket.exists(), "the second agent removed the socket");
    let out = eunomia()
        .args(["status", "--json", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    first.signal(libc::SIGTERM);
    let (code, _) = first.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
}

#[test]
fn otel_variables_point_the_agent_at_a_core_without_a_sinks_section() {
    if !kernel_tests_can_run("otel_variables_point_the_agent_at_a_core_without_a_sinks_section") {
        return;
    }
    let _serial = kernel_lock();
    let metrics_core = OtlpReceiver::start();
    let other_core = OtlpReceiver::start();
    let dir = temp_dir("conventions-otel");
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        "[agent]\npoll_interval = \"1s\"\nresource_attributes = { \"deployment.environment.name\" = \"staging\" }\n[tools]\nenabled = []\n[rules]\nconsole = false\n",
    )
    .unwrap();
    let mut cmd = eunomia();
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["run", "--for", "3s", "--config"])
        .arg(&config)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", other_core.endpoint())
        .env(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            metrics_core.endpoint(),
        )
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=open%20sesame")
        .env("OTEL_SERVICE_NAME", "node-agent")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "k8s.cluster.name=eu-1,deployment.environment.name=prod",
        );
    let agent = Agent::spawn(cmd);
    let (code, _, stderr) = agent.finish_with_stderr(Duration::from_secs(40));
    assert_eq!(code, 0, "{}", stderr.join("\n"));

    let r = metrics_core.received();
    assert!(
        !r.metrics.is_empty(),
        "no metrics at OTEL_EXPORTER_OTLP_METRICS_ENDPOINT; stderr:\n{}",
        stderr.join("\n")
    );
    assert!(
        other_core.received().metrics.is_empty(),
        "metrics went to the base endpoint"
    );
    let resource = r.metrics[0].1.resource_metrics[0]
        .resource
        .as_ref()
        .expect("resource");
    let a = &resource.attributes;
    assert_eq!(attr(a, "service.name"), Some("node-agent"));
    assert_eq!(attr(a, "k8s.cluster.name"), Some("eu-1"));
    // The file wins over OTEL_RESOURCE_ATTRIBUTES.
    assert_eq!(attr(a, "deployment.environment.name"), Some("staging"));
    assert_eq!(attr(a, "os.type"), Some("linux"));
    assert!(attr(a, "host.name").is_some());
    assert!(
        r.metrics_metadata[0]
            .iter()
            .any(|(k, v)| k == "x-api-key" && v == "open sesame"),
        "header missing: {:?}",
        r.metrics_metadata[0]
    );
}

#[test]
fn status_shows_one_line_per_sink_and_rates_per_source() {
    if !kernel_tests_can_run("status_shows_one_line_per_sink_and_rates_per_source") {
        return;
    }
    let _serial = kernel_lock();
    let dir = temp_dir("conventions-status");
    let socket = dir.join("eunomia.sock");
    // A port nobody listens on: the OTLP sink is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let prom = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let prom_addr = prom.local_addr().unwrap();
    drop(prom);
    let config = dir.join("eunomia.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\npoll_interval = \"1s\"\ncontrol_socket = {:?}\n[tools]\nenabled = []\n[rules]\nconsole = false\n[sinks.otlp]\nendpoint = {down:?}\nexport_interval = \"1s\"\ntimeout = \"500ms\"\ninitial_backoff = \"100ms\"\nmax_backoff = \"200ms\"\n[sinks.prometheus]\nlisten = \"{prom_addr}\"\n",
            socket.display().to_string()
        ),
    )
    .unwrap();
    let mut cmd = eunomia();
    cmd.env_remove("EUNOMIA_SOCKET")
        .args(["run", "--for", "60s", "--config"])
        .arg(&config);
    let mut agent = Agent::spawn(cmd);
    agent.wait_for_stderr("control API listening", Duration::from_secs(30));
    // One scrape, and time for a failed export and a few polls.
    let scraped = std::process::Command::new("curl")
        .args(["-sf", &format!("http://{prom_addr}/metrics")])
        .output()
        .expect("curl");
    assert!(scraped.status.success());
    std::thread::sleep(Duration::from_secs(3));
    let out = eunomia()
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("sink {name}:")))
            .unwrap_or_else(|| panic!("no line for sink {name}:\n{stdout}"))
            .to_owned()
    };
    let otlp = line("otlp");
    assert!(otlp.contains("DOWN") && otlp.contains(&down), "{otlp}");
    assert!(otlp.contains("last success never"), "{otlp}");
    assert!(otlp.contains("last error"), "{otlp}");
    assert!(otlp.contains("backlog "), "{otlp}");
    let prom = line("prometheus");
    assert!(prom.contains(" up,") && prom.contains("ago"), "{prom}");
    assert!(
        stdout.contains(&format!("config:    {}", config.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("dropped because the channel was full"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hotpath.syscalls ") && stdout.contains("/s ("),
        "{stdout}"
    );
    let json = eunomia()
        .args(["status", "--json", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let sinks = v["sinks"].as_array().expect("sinks array");
    assert_eq!(sinks.len(), 2, "{v}");
    let syscalls = v["source_rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == "hotpath.syscalls")
        .expect("hotpath.syscalls rate");
    assert!(syscalls["messages"].as_u64().unwrap() >= 1, "{syscalls}");
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish(Duration::from_secs(30));
    assert_eq!(code, 0);
}
