//! Unit tests of the rules engine: every operator, precedence, every error
//! message (the default rules are tested in `default_tests.rs`).

use std::time::{Duration, Instant};

use parsers::{Event, EventKind, Value, fields as pf};

use super::*;

// ---------------------------------------------------------------- helpers

/// Compiles one rule with `cond` (plus optional extra TOML) and returns the set.
fn set_with(extra: &str, cond: &str) -> RuleSet {
    let text = format!(
        "{extra}\n[[rule]]\nname = \"r\"\ncondition = '''{cond}'''\nseverity = \"info\"\noutput = \"o\"\n"
    );
    match load_str("t.toml", &text) {
        Ok(l) => l.set,
        Err(e) => panic!("{cond}: {e}"),
    }
}

/// Whether `cond` holds for `ev` (with `labels`).
fn holds_l(cond: &str, ev: &Event, labels: &[(&str, &str)]) -> bool {
    let set = set_with(LISTS, cond);
    let labels = labels.to_vec();
    let ctx = Ctx {
        event: ev,
        labels: &labels,
        lineage: Lineage::default(),
    };
    set.rules()[0].condition.eval(&ctx)
}

fn holds(cond: &str, ev: &Event) -> bool {
    holds_l(cond, ev, &[])
}

const LISTS: &str = "[lists]\nshells = [\"sh\", \"bash\"]\nports = [22, 443]\n[macros]\nis_exec = 'event.kind = exec'\nis_shell = 'is_exec and proc.comm in shells'\n";

/// An exec event as execsnoop -T -U -x prints it, through the real parser.
pub(super) fn exec_line(line: &str) -> Event {
    parse(
        "execsnoop",
        "TIME     UID    PCOMM            PID    PPID   RET ARGS",
        line,
    )
}

/// One event from `line` of `tool`'s output after its `header`.
pub(super) fn parse(tool: &str, header: &str, line: &str) -> Event {
    let mut p = parsers::builtin(tool).expect("builtin parser");
    let mut out = Vec::new();
    p.feed(header.as_bytes(), &mut out).expect("header");
    p.feed(line.as_bytes(), &mut out)
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    p.finish(&mut out);
    let rec = out
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no record from {line:?}"));
    match rec {
        parsers::Record::Event(e) => e,
        other => panic!("not an event: {other:?}"),
    }
}

fn sample() -> Event {
    exec_line("16:44:23 1000  bash             25313  25258    0 /bin/bash -c echo hi ")
}

fn net_event() -> Event {
    let mut e = Event::new("tcpstates".into(), EventKind::TcpState);
    e.pid = Some(9);
    e.push(pf::NET_DADDR, Value::Ip("10.1.2.3".parse().unwrap()));
    e.push(pf::NET_DPORT, Value::Int(4444));
    e.push(pf::DURATION, Value::Duration(1_500_000));
    e.push(pf::NET_NEW_STATE, Value::Str("SYN_SENT".into()));
    e
}

// ---------------------------------------------------------------- operators

#[test]
fn comparisons_on_integers() {
    let e = sample();
    assert!(holds("proc.uid = 1000", &e));
    assert!(holds("proc.uid == 1000", &e));
    assert!(!holds("proc.uid != 1000", &e));
    assert!(holds("proc.uid != 0", &e));
    assert!(holds("proc.uid < 1001", &e));
    assert!(!holds("proc.uid < 1000", &e));
    assert!(holds("proc.uid <= 1000", &e));
    assert!(holds("proc.uid > 999", &e));
    assert!(!holds("proc.uid > 1000", &e));
    assert!(holds("proc.uid >= 1000", &e));
    assert!(holds("proc.pid = 0x62e1", &e));
    assert!(holds("ret = 0", &e));
    assert!(holds("ret > -1", &e));
}

#[test]
fn comparisons_on_text_kind_ip_and_durations() {
    let e = sample();
    assert!(holds("proc.comm = bash", &e));
    assert!(holds("proc.comm = \"bash\"", &e));
    assert!(holds("proc.comm != sh", &e));
    assert!(holds("event.kind = exec", &e));
    assert!(holds("event.kind != open", &e));
    assert!(holds("event.tool = execsnoop", &e));
    let n = net_event();
    assert!(holds("net.daddr = 10.1.2.3", &n));
    assert!(holds("net.daddr != \"10.1.2.4\"", &n));
    assert!(holds("duration > 1ms", &n));
    assert!(holds("duration < 2ms", &n));
    assert!(holds("duration = 1500000", &n));
    assert!(!holds("duration >= 1s", &n));
}

#[test]
fn membership() {
    let e = sample();
    assert!(holds("proc.comm in shells", &e));
    assert!(holds("proc.comm in (shells)", &e));
    assert!(holds("proc.comm in (\"zsh\", \"bash\")", &e));
    assert!(!holds("proc.comm in (\"zsh\", 'fish')", &e));
    assert!(holds("proc.comm in (\"zsh\", shells)", &e));
    assert!(!holds("proc.comm in ()", &e));
    assert!(holds("event.kind in (open, exec)", &e));
    assert!(!holds("event.kind in (open, stat)", &e));
    assert!(holds("proc.uid in (0, 1000)", &e));
    let n = net_event();
    assert!(holds("net.dport in (4444, 1337)", &n));
    assert!(!holds("net.dport in ports", &n));
    assert!(holds("net.daddr in (\"10.1.2.3\", \"::1\")", &n));
    // large sets are hashed
    let many: Vec<String> = (0..100).map(|i| format!("\"c{i}\"")).collect();
    assert!(!holds(&format!("proc.comm in ({})", many.join(",")), &e));
    assert!(holds(
        &format!("proc.comm in ({}, bash)", many.join(",")).replace(", bash)", ", \"bash\")"),
        &e
    ));
}

#[test]
fn text_matching() {
    let e = sample();
    assert!(holds("proc.args contains \"-c echo\"", &e));
    assert!(!holds("proc.args contains zsh", &e));
    assert!(holds("proc.args startswith /bin/", &e));
    assert!(!holds("proc.args startswith /usr/", &e));
    assert!(holds("proc.args endswith \"echo hi\"", &e));
    assert!(holds("proc.args glob \"/bin/*sh -c *\"", &e));
    assert!(!holds("proc.args glob \"/bin/?sh*\"", &e));
    assert!(holds("proc.args glob \"/bin/[a-c]ash*\"", &e));
}

#[test]
fn exists_and_absent_fields() {
    let e = sample();
    assert!(holds("proc.args exists", &e));
    assert!(!holds("file.path exists", &e));
    assert!(holds("not file.path exists", &e));
    // comparisons on absent fields are false, whatever the operator
    assert!(!holds("file.path = x", &e));
    assert!(!holds("file.path != x", &e));
    assert!(!holds("container.id != \"\"", &e));
    assert!(holds_l(
        "container.id != \"\"",
        &e,
        &[("container.id", "abc")]
    ));
    assert!(!holds_l(
        "container.id != \"\"",
        &e,
        &[("container.id", "")]
    ));
    assert!(holds_l(
        "k8s.namespace = prod",
        &e,
        &[("k8s.namespace", "prod")]
    ));
}

#[test]
fn boolean_logic_and_precedence() {
    let e = sample();
    assert!(holds("proc.comm = bash and proc.uid = 1000", &e));
    assert!(!holds("proc.comm = bash and proc.uid = 0", &e));
    assert!(holds("proc.comm = sh or proc.uid = 1000", &e));
    assert!(!holds("proc.comm = sh or proc.uid = 0", &e));
    assert!(holds("not proc.comm = sh", &e));
    assert!(!holds("not not proc.comm = sh", &e));
    // and binds tighter than or: true or (false and false)
    assert!(holds(
        "proc.uid = 1000 or proc.comm = sh and proc.pid = 1",
        &e
    ));
    // parentheses override: (true or false) and false
    assert!(!holds(
        "(proc.uid = 1000 or proc.comm = sh) and proc.pid = 1",
        &e
    ));
    // not binds tighter than and
    assert!(!holds("not proc.comm = bash and proc.uid = 1000", &e));
    assert!(holds("not (proc.comm = bash and proc.uid = 0)", &e));
    assert!(holds("is_shell", &e));
    assert!(holds("is_shell and not proc.uid = 0", &e));
}

#[test]
fn fields_compare_with_fields() {
    let e = sample();
    assert!(holds("proc.pid > proc.ppid", &e));
    assert!(!holds("proc.pid = proc.ppid", &e));
    assert!(holds("proc.comm != event.tool", &e));
}

#[test]
fn kind_index_only_tries_matching_rules() {
    let set = set_with(LISTS, "is_shell or (event.kind = open and file.path = x)");
    let r = &set.rules()[0];
    assert_eq!(r.kinds.names(), vec!["exec", "open"]);
    assert_eq!(set.candidates(EventKind::Exec), &[0]);
    assert!(set.candidates(EventKind::Mount).is_empty());
    let set = set_with("", "not event.kind = exec and proc.pid = 1");
    assert!(!set.rules()[0].kinds.contains(EventKind::Exec));
    assert!(set.rules()[0].kinds.contains(EventKind::Open));
}

#[test]
fn derived_fields() {
    let mut e = Event::new("opensnoop".into(), EventKind::Open);
    e.push(pf::FILE_FLAGS, Value::Int(0o1101));
    assert!(holds("file.writable = true", &e));
    e.fields[0].1 = Value::Int(0o2000000);
    assert!(holds("file.writable = false", &e));
}

// ---------------------------------------------------------------- errors

/// The single error of loading `text`, as `line:col: message`.
fn error_of(text: &str) -> String {
    let errs = load_str("t.toml", text).expect_err("must fail").0;
    let e = &errs[0];
    format!("{}:{}: {} [{}]", e.line, e.col, e.message, e.width)
}

fn rule_error(cond: &str) -> String {
    error_of(&format!(
        "{LISTS}[[rule]]\nname = \"r\"\ncondition = '{cond}'\nseverity = \"info\"\noutput = \"o\"\n"
    ))
}

#[test]
fn compile_errors_point_at_the_text() {
    // The condition starts at line 9, column 14 of the generated file.
    let cases = [
        (
            "proc.comn = x",
            "9:14: unknown field `proc.comn` (did you mean `proc.comm`?) [9]",
        ),
        (
            "proc.comm in shellz",
            "9:27: unknown list `shellz` (to match the text itself, quote it) [6]",
        ),
        (
            "proc.comm in is_exec",
            "9:27: unknown list `is_exec` (`is_exec` is a macro, not a list) [7]",
        ),
        ("nosuch", "9:14: unknown macro `nosuch` [6]"),
        (
            "shells",
            "9:14: unknown macro `shells` (`shells` is a list: use it as `FIELD in shells`) [6]",
        ),
        (
            "event.kind = exce",
            "9:27: unknown event kind `exce` (expected one of exec, exit, open, stat, signal, kill, mount, tcp_state, tcp_session, dns_lookup, block_io, runq_latency, direct_reclaim, generic, http_server, http_client, log) [4]",
        ),
        ("net.dport = http", "9:26: `http` is not an integer [4]"),
        (
            "duration > soon",
            "9:25: `soon` is not a duration (e.g. 10ms, 2s) [4]",
        ),
        (
            "net.daddr = 1.2.3",
            "9:26: `1.2.3` is not an IP address [5]",
        ),
        (
            "proc.core_dumped = yes",
            "9:33: `yes` is not a boolean (true or false) [3]",
        ),
        (
            "proc.comm < b",
            "9:14: operator `<` needs a numeric field; `proc.comm` is text [9]",
        ),
        (
            "net.dport contains 4",
            "9:14: `contains` needs a text field; `net.dport` is an integer [9]",
        ),
        (
            "proc.core_dumped in (true)",
            "9:14: `in` does not apply to `proc.core_dumped`, which is a boolean [16]",
        ),
        (
            "file.path glob \"[ab\"",
            "9:29: unclosed `[` in glob pattern [5]",
        ),
        ("net.dport in shells", "9:27: `sh` is not an integer [6]"),
        (
            "proc.pid = proc.comm",
            "9:25: cannot compare `proc.pid` (an integer) with `proc.comm` (text) [9]",
        ),
        (
            "proc.comm = bash and",
            "9:34: expected a field, macro, `not` or `(`, found the end of the condition [1]",
        ),
    ];
    for (cond, want) in cases {
        assert_eq!(rule_error(cond), want, "{cond}");
    }
}

#[test]
fn macro_errors_point_into_the_macro() {
    let text = "[macros]\na = 'b'\nb = 'proc.pid > x'\n[[rule]]\nname = \"r\"\ncondition = 'a'\nseverity = \"info\"\noutput = \"o\"\n";
    assert_eq!(error_of(text), "3:17: `x` is not an integer [1]");
    let cycle = "[macros]\na = 'b and proc.pid = 1'\nb = 'a'\n[[rule]]\nname = \"r\"\ncondition = 'a'\nseverity = \"info\"\noutput = \"o\"\n";
    let errs = load_str("t.toml", cycle).unwrap_err().0;
    // the cycle, at its closing reference; then the rule's use of `a`
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].message, "macro cycle: a -> b -> a");
    assert_eq!(
        errs[1].message,
        "macro `a` has errors (reported at its definition)"
    );
    assert_eq!((errs[0].line, errs[0].col), (3, 6));
    let unused = "[macros]\nu = 'bogus.field = 1'\n";
    assert_eq!(error_of(unused), "2:6: unknown field `bogus.field` [11]");
}

#[test]
fn rule_field_errors() {
    let rule = |body: &str| error_of(&format!("[[rule]]\n{body}\n"));
    let ok = "name = \"r\"\ncondition = 'event.kind = exec'\noutput = \"o\"";
    assert_eq!(
        rule(&format!("{ok}\nseverity = \"high\"")),
        "5:12: unknown severity `high` (expected one of debug, info, notice, warning, error, critical, alert, emergency) [6]"
    );
    assert_eq!(
        rule(
            "name = \"r\"\ncondition = 'event.kind = exec'\nseverity = \"info\"\noutput = \"pid {proc.pdi}\""
        ),
        "5:16: unknown field `proc.pdi` in output (did you mean `proc.pid`?) [8]"
    );
    assert_eq!(
        rule(
            "name = \"r\"\ncondition = 'event.kind = exec'\nseverity = \"info\"\noutput = \"pid {proc.pid\""
        ),
        "5:15: unclosed `{` in output (write `{{` for a brace) [9]"
    );
    assert_eq!(
        rule(&format!("{ok}\nseverity = \"info\"\nrate_limit = \"fast\"")),
        "6:14: invalid rate limit `fast`: expected COUNT/DURATION, e.g. \"10/1m\" [6]"
    );
    assert_eq!(
        rule(&format!("{ok}\nseverity = \"info\"\ndedup_by = [\"nope\"]")),
        "6:13: unknown field `nope` in dedup_by [6]"
    );
    assert_eq!(
        rule(&format!("{ok}\nseverity = \"info\"\ncolour = 1")),
        "6:1: unknown field `colour`, expected one of `name`, `description`, `condition`, `output`, `severity`, `tags`, `rate_limit`, `dedup_by`, `enabled` [6]"
    );
    assert!(rule("name = \"r\"").contains("missing field"));
    assert_eq!(
        error_of("[lists]\nx = [1.5]\n"),
        "2:6: list `x`: members must be strings or integers, not float [3]"
    );
    assert!(error_of("[[rule]\n").starts_with("1:"));
}

#[test]
fn positions_in_multiline_conditions() {
    let text = "[[rule]]\nname = \"r\"\ncondition = '''\n  event.kind = exec\n  and proc.bogus = 1'''\nseverity = \"info\"\noutput = \"o\"\n";
    assert_eq!(
        error_of(text),
        "5:7: unknown field `proc.bogus` (did you mean `proc.args`?) [10]"
    );
}

#[test]
fn later_files_override_and_disable() {
    let a = diag::SourceFile {
        path: "a.toml".into(),
        text: "[lists]\nl = [\"x\"]\n[[rule]]\nname = \"one\"\ncondition = 'event.kind = exec and proc.comm in l'\nseverity = \"info\"\noutput = \"o\"\n[[rule]]\nname = \"two\"\ncondition = 'event.kind = exec'\nseverity = \"info\"\noutput = \"o\"\n".into(),
    };
    let b = diag::SourceFile {
        path: "b.toml".into(),
        text: "[lists]\nl = [\"bash\"]\n[[rule]]\nname = \"two\"\ncondition = 'event.kind = exec'\nseverity = \"info\"\noutput = \"o\"\nenabled = false\n".into(),
    };
    let set = load_sources(vec![a, b]).unwrap().set;
    let names: Vec<&str> = set.rules().iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["one"]);
    let ev = sample();
    let ctx = Ctx::bare(&ev);
    assert!(set.rules()[0].condition.eval(&ctx));
}

#[test]
fn warns_about_rules_without_kind() {
    let l = load_str(
        "t.toml",
        "[[rule]]\nname = \"r\"\ncondition = 'proc.uid = 0'\nseverity = \"info\"\noutput = \"o\"\n",
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].message.contains("every event"));
}

// ---------------------------------------------------------------- engine

#[test]
fn optional_output_parts_show_only_known_fields() {
    let src = diag::Src::new(
        Arc::new(diag::SourceFile {
            path: "x".into(),
            text: String::new(),
        }),
        0..0,
        "",
    );
    let set = Arc::new(set_with(LISTS, "is_shell"));
    let mut rules = set.rules().to_vec();
    rules[0].output = template::Template::compile(
        "shell {proc.comm}[[ in container {container.name}]][[ of pod {k8s.pod.name}]][[ at {container.id}]]",
        &src,
    )
    .unwrap();
    let set = Arc::new(RuleSet::new(rules, vec![]));
    let mut engine = Engine::new(set, Duration::from_secs(60));
    let mut out = Vec::new();
    let labels = vec![("container.name", "web"), ("container.id", "")];
    engine.on_event(&sample(), &labels, Instant::now(), &mut out);
    assert_eq!(out[0].output, "shell bash in container web");
    assert!(template::Template::compile("a [[ {proc.comm}", &src).is_err());
}

#[test]
fn engine_renders_fingerprints_and_deduplicates() {
    let set = Arc::new(set_with(LISTS, "is_shell"));
    let mut rules = set.rules().to_vec();
    rules[0].output = template::Template::compile(
        "shell {proc.comm} pid {proc.pid} in {container.id} {file.path}",
        &diag::Src::new(
            Arc::new(diag::SourceFile {
                path: "x".into(),
                text: String::new(),
            }),
            0..0,
            "",
        ),
    )
    .unwrap();
    rules[0].dedup_by = vec![
        fields::FieldRef::Comm,
        fields::FieldRef::Label("container.id"),
    ]
    .into();
    let set = Arc::new(RuleSet::new(rules, vec![]));
    let mut engine = Engine::new(set, Duration::from_secs(60));
    let labels = vec![("container.id", "c1")];
    let t0 = Instant::now();
    let mut out = Vec::new();
    let e1 = sample();
    let mut e2 = sample();
    e2.pid = Some(777);
    engine.on_event(&e1, &labels, t0, &mut out);
    engine.on_event(&e2, &labels, t0 + Duration::from_secs(1), &mut out);
    assert_eq!(
        out.len(),
        1,
        "second shell in the same container is a duplicate"
    );
    let a = &out[0];
    assert_eq!(a.output, "shell bash pid 25313 in c1 <NA>");
    assert_eq!(a.labels.get("container.id").map(String::as_str), Some("c1"));
    assert_eq!(a.fields.get("proc.pid"), Some(&serde_json::json!(25313)));
    assert_eq!(a.kind, "exec");
    engine.on_event(
        &e2,
        &vec![("container.id", "c2")],
        t0 + Duration::from_secs(2),
        &mut out,
    );
    assert_eq!(out.len(), 2, "another container is another finding");
    assert_ne!(out[0].fingerprint, out[1].fingerprint);
    engine.on_event(&e1, &labels, t0 + Duration::from_secs(70), &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].suppressed, 1);
    let s = engine.stats();
    assert_eq!(
        (s.events, s.matches, s.alerts, s.limits.duplicates),
        (4, 4, 3, 1)
    );
    let json = serde_json::to_value(&out[0]).unwrap();
    assert_eq!(json["severity"], "info");
    assert_eq!(json["fingerprint"].as_str().map(str::len), Some(16));
}

#[test]
fn rules_see_http_requests() {
    let mut e = Event::new("http".into(), EventKind::HttpServer);
    e.pid = Some(9);
    e.push(pf::HTTP_METHOD, Value::Str("POST".into()));
    e.push(pf::URL_PATH, Value::Str("/admin/users".into()));
    e.push(pf::HTTP_ROUTE, Value::Str("/admin/users".into()));
    e.push(pf::HTTP_STATUS, Value::Int(503));
    e.push(pf::HTTP_STATUS_CLASS, Value::Str("5xx".into()));
    e.push(pf::DURATION, Value::Duration(2_000_000_000));
    e.push(pf::CLIENT_ADDRESS, Value::Ip("10.9.8.7".parse().unwrap()));
    e.push(pf::SERVER_PORT, Value::Int(8080));
    assert!(holds(
        "event.kind = http_server and http.response.status_code >= 500",
        &e
    ));
    assert!(holds(
        "url.path glob \"/admin/*\" and not client.address in (\"127.0.0.1\")",
        &e
    ));
    assert!(holds("http.request.method = POST and duration > 1s", &e));
    assert!(holds(
        "http.status_class = \"5xx\" and server.port = 8080",
        &e
    ));
    assert!(!holds("event.kind = http_client", &e));
}
