//! Unit tests of the record checker, with made-up process facts.

use std::collections::HashMap;

use super::*;

/// Processes by pid: (comm, uid, exec comm if it exec'd just now), when
/// "now" was, and newline counts per pid and family when the kernel counts.
struct Fake(
    HashMap<u32, (&'static str, u32, Option<&'static str>)>,
    u64,
    Option<HashMap<u32, [u32; 2]>>,
    std::sync::atomic::AtomicBool,
);

impl ProcessFacts for Fake {
    fn recorded(&self, pid: u32) -> Option<Facts> {
        let (comm, uid, exec) = *self.0.get(&pid)?;
        let now = self.1;
        let newlines = self.2.as_ref().and_then(|n| n.get(&pid).copied());
        Some(Facts {
            comms: vec![comm.to_owned()],
            uids: vec![uid],
            execs: exec
                .map(|c| (now - 1_000, c.to_owned()))
                .into_iter()
                .collect(),
            execs_known: true,
            newlines: newlines.unwrap_or_default(),
            newline_ns: now - 1_000,
        })
    }
    fn live(&self, _pid: u32) -> Option<Facts> {
        None
    }
    fn newlines(&self, family: u32) -> Option<u64> {
        let counts = self.2.as_ref()?;
        // the checker's first question is at its start, before any string
        if !self.3.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Some(0);
        }
        Some(counts.values().map(|c| u64::from(c[family as usize])).sum())
    }
}

fn facts() -> Arc<dyn ProcessFacts> {
    fake(None)
}

fn fake(counts: Option<HashMap<u32, [u32; 2]>>) -> Arc<dyn ProcessFacts> {
    Arc::new(Fake(
        HashMap::from([
            (100, ("attacker", 65534, None)),
            (101, ("x\\nforged", 65534, Some("x\\nforged"))),
            (200, ("sshd", 0, None)),
            (300, ("true", 0, Some("true"))),
        ]),
        crate::host::monotonic_ns(),
        counts,
        Default::default(),
    ))
}

/// In a list of lines: the [`HOLD`] time passes without a line.
const RELEASE: &[u8] = b"\0release";

/// Runs `lines` through a checker and a `tool` parser.
fn run(tool: &str, lines: &[&[u8]]) -> (Vec<Event>, Vec<String>) {
    run_with(facts(), None, tool, lines)
}

/// [`run`] with these facts, for a tool of `kind`.
fn run_with(
    facts: Arc<dyn ProcessFacts>,
    kind: Option<EventKind>,
    tool: &str,
    lines: &[&[u8]],
) -> (Vec<Event>, Vec<String>) {
    let mut parser = parsers::builtin(tool).unwrap();
    let mut checker = Checker::new(facts, kind);
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let mut note = |o: Verdict| {
        notes.push(match o {
            Verdict::Rejected(r, _) => r.as_str().to_owned(),
            Verdict::Continued => "continued".to_owned(),
            Verdict::Joined => "joined".to_owned(),
            Verdict::Unparsable(_) => "unparsable".to_owned(),
        })
    };
    for line in lines {
        if *line == RELEASE {
            checker.release_with(parser.as_mut(), &mut out, &mut note);
        } else {
            checker.line(parser.as_mut(), line, &mut out, &mut note);
        }
    }
    checker.release_with(parser.as_mut(), &mut out, &mut note);
    let evs = out.iter().filter_map(|r| r.as_event().cloned()).collect();
    (evs, notes)
}

const OPEN_HEADER: &[u8] = b"TIME     UID     PID    COMM              FD ERR FLAGS    PATH";

#[test]
fn a_path_with_a_newline_cannot_forge_an_open_of_another_process() {
    let (evs, notes) = run(
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 65534   100    attacker           3   0 00000000 y",
            b"03:11:30 0       4244   sshd-fake2         3   0 00000000 /etc/shadow",
        ],
    );
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].pid, Some(100));
    let path = evs[0].field("file.path").and_then(Value::as_str).unwrap();
    assert!(path.starts_with("y\\n03:11:30 0"), "{path}");
    assert!(path.ends_with("/etc/shadow"), "{path}");
    assert_eq!(notes, ["continued"]);
}

#[test]
fn a_forged_record_with_no_record_before_it_is_rejected() {
    let (evs, notes) = run(
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 0       100    attacker           3   0 00000000 /etc/shadow",
            b"03:11:30 0       200    notsshd            3   0 00000000 /etc/shadow",
            b"03:11:30 0       999    ghost              3   0 00000000 /etc/shadow",
        ],
    );
    assert!(evs.is_empty(), "{evs:?}");
    assert_eq!(notes, ["uid_mismatch", "comm_mismatch", "unknown_pid"]);
}

#[test]
fn a_mismatched_record_of_a_real_process_is_rejected_not_appended() {
    let (evs, notes) = run(
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 65534   100    attacker           3   0 00000000 y",
            b"03:11:30 0       200    sshd-fake          3   0 00000000 /etc/shadow",
        ],
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].field("file.path").and_then(Value::as_str), Some("y"));
    assert_eq!(notes, ["comm_mismatch"]);
}

#[test]
fn real_records_pass_and_split_comms_are_joined() {
    let header: &[u8] = b"TIME     UID    PCOMM            PID    PPID   RET ARGS";
    let (evs, notes) = run(
        "execsnoop",
        &[
            header,
            b"02:55:00 0     true             300    1        0 \"/bin/true\" \"a\\nb\"",
            b"02:55:00 65534 x",
            b"forged         101    1        0 \"/tmp/x\"",
        ],
    );
    assert_eq!(notes, ["joined"]);
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(
        evs[0].field("proc.args").and_then(Value::as_str),
        Some("/bin/true a\\nb")
    );
    assert_eq!(evs[1].comm.as_deref(), Some("x\\nforged"));
    assert_eq!(evs[1].pid, Some(101));
}

#[test]
fn an_exec_is_claimed_once_and_only_if_the_kernel_saw_it() {
    let header: &[u8] = b"TIME     UID    PCOMM            PID    PPID   RET ARGS";
    let line: &[u8] = b"02:55:00 0     true             300    1        0 \"/bin/true\"";
    let (evs, notes) = run("execsnoop", &[header, line, RELEASE, line]);
    assert_eq!(evs.len(), 1);
    assert_eq!(notes, ["exec_claimed"]);
    // right after it too: a record of a real process never continues another
    let (evs, notes) = run("execsnoop", &[header, line, line]);
    assert_eq!(evs.len(), 1);
    assert_eq!(notes, ["exec_claimed"]);
    let (evs, notes) = run(
        "execsnoop",
        &[
            header,
            b"02:55:00 0     sshd             200    1        0 \"/usr/sbin/sshd\"",
        ],
    );
    assert!(evs.is_empty());
    assert_eq!(notes, ["no_exec"]);
}

#[test]
fn junk_with_nothing_before_it_is_unparsable() {
    let (evs, notes) = run("opensnoop", &[OPEN_HEADER, b"garbage", b"more garbage"]);
    assert!(evs.is_empty());
    assert_eq!(notes, ["unparsable", "unparsable"]);
}

#[test]
fn counted_newlines_decide_what_continues_a_path() {
    // the attacker passed one newline in a path; the victim is real
    let counts = HashMap::from([(100, [1, 0]), (200, [0, 0])]);
    let forged: &[u8] = b"03:11:30 0       200    sshd               3   0 00000000 /etc/shadow";
    let (evs, notes) = run_with(
        fake(Some(counts.clone())),
        Some(EventKind::Open),
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 65534   100    attacker           3   0 00000000 y",
            forged,
        ],
    );
    assert_eq!(notes, ["continued"]);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].pid, Some(100));
    // the same line after a record whose process passed no newline is real
    let (evs, notes) = run_with(
        fake(Some(counts)),
        Some(EventKind::Open),
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 0       200    sshd               3   0 00000000 /etc/hosts",
            forged,
        ],
    );
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        evs.iter().map(|e| e.pid).collect::<Vec<_>>(),
        [Some(200); 2]
    );
}

#[test]
fn text_after_a_newline_that_comes_after_the_hold_is_not_a_record() {
    // the tool stalled between the attacker's record and its continuation:
    // the record was sent, and the line that looks like sshd's open is late
    // text, rejected; a genuine record after the owed line is accepted
    let counts = HashMap::from([(100, [1, 0]), (200, [0, 0])]);
    let forged: &[u8] = b"03:11:30 0       200    sshd               3   0 00000000 /etc/shadow";
    let (evs, notes) = run_with(
        fake(Some(counts)),
        Some(EventKind::Open),
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 65534   100    attacker           3   0 00000000 y",
            RELEASE,
            forged,
            forged,
        ],
    );
    assert_eq!(notes, ["late_text"]);
    assert_eq!(
        evs.iter().map(|e| e.pid).collect::<Vec<_>>(),
        [Some(100), Some(200)]
    );
    assert_eq!(evs[0].field("file.path").and_then(Value::as_str), Some("y"));
}

#[test]
fn a_record_owed_lines_waits_longer_than_one_that_is_not() {
    let counts = HashMap::from([(100, [1, 0]), (200, [0, 0])]);
    let mut parser = parsers::builtin("opensnoop").unwrap();
    let mut checker = Checker::new(fake(Some(counts)), Some(EventKind::Open));
    let (mut out, mut note) = (Vec::new(), |_: Verdict| {});
    checker.line(parser.as_mut(), OPEN_HEADER, &mut out, &mut note);
    let sshd: &[u8] = b"03:11:30 0       200    sshd               3   0 00000000 /etc/hosts";
    checker.line(parser.as_mut(), sshd, &mut out, &mut note);
    assert_eq!(checker.hold_for(), HOLD);
    let attacker: &[u8] = b"03:11:30 65534   100    attacker           3   0 00000000 y";
    checker.line(parser.as_mut(), attacker, &mut out, &mut note);
    assert!(checker.holding());
    assert_eq!(checker.hold_for(), HOLD_OWED);
}

#[test]
fn a_mount_string_with_newlines_is_joined_whole() {
    let counts = HashMap::from([(100, [0, 2]), (200, [0, 0])]);
    let (evs, notes) = run_with(
        fake(Some(counts)),
        Some(EventKind::Mount),
        "mountsnoop",
        &[
            b"TIME     COMM             PID     TID     MNT_NS      CALL",
            b"05:00:00 attacker         100     100     4026531832  umount(\"c",
            b"05:00:00 sshd             200     200     4026531832  umount(\"/\", 0x0) = 0",
            b"d\", 0x0) = -ENOENT",
        ],
    );
    assert_eq!(notes, ["joined"], "{evs:?}");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].pid, Some(100));
    let target = evs[0]
        .field("mount.target")
        .and_then(Value::as_str)
        .unwrap();
    assert!(
        target.starts_with("c\\n05:00:00 sshd") && target.ends_with("\\nd"),
        "{target}"
    );
    assert_eq!(evs[0].field("ret").and_then(Value::as_int), Some(-1));
}

#[test]
fn a_decoy_record_cannot_use_up_the_newline_count() {
    let counts = HashMap::from([(100, [1, 0]), (200, [0, 0])]);
    let victim: &[u8] = b"03:11:30 0       200    sshd               3   0 00000000 /etc/shadow";
    let (evs, notes) = run_with(
        fake(Some(counts)),
        Some(EventKind::Open),
        "opensnoop",
        &[
            OPEN_HEADER,
            b"03:11:30 65534   100    attacker           3   0 00000000 /tmp/decoy",
            victim,
            b"03:11:30 65534   100    attacker           3   0 00000000 y",
            victim,
        ],
    );
    assert_eq!(notes, ["continued", "continued"]);
    assert!(evs.iter().all(|e| e.pid == Some(100)), "{evs:?}");
    let paths: Vec<_> = evs
        .iter()
        .filter_map(|e| e.field("file.path")?.as_str())
        .collect();
    assert!(
        paths[1].starts_with("y\\n03:11:30 0       200"),
        "{paths:?}"
    );
}

/// A process the kernel did not record (older than the agent): only
/// `/proc` knows it; counts how often it is asked.
struct OlderThanTheAgent(std::sync::atomic::AtomicU32);

impl ProcessFacts for OlderThanTheAgent {
    fn recorded(&self, _pid: u32) -> Option<Facts> {
        None
    }
    fn live(&self, _pid: u32) -> Option<Facts> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Facts {
            comms: vec!["nginx".to_owned()],
            uids: vec![0],
            ..Facts::default()
        })
    }
    fn newlines(&self, _family: u32) -> Option<u64> {
        None
    }
}

#[test]
fn proc_is_asked_once_for_a_burst_of_records_of_an_old_process() {
    let facts = Arc::new(OlderThanTheAgent(Default::default()));
    let line: &[u8] = b"16:44:42 7100    nginx            15        7000    0     ";
    let mut lines = vec![b"TIME     PID     COMM             SIG       TPID    RESULT" as &[u8]];
    lines.extend(std::iter::repeat_n(line, 50));
    let (evs, notes) = run_with(facts.clone(), Some(EventKind::Signal), "sigsnoop", &lines);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(evs.len(), 50);
    let asked = facts.0.load(std::sync::atomic::Ordering::Relaxed);
    assert!(asked < 5, "/proc asked {asked} times for 50 records");
}
