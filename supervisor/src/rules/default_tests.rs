//! Unit tests of the default rules, on events parsed by the real parsers
//! from lines in the real tools' output format.

use std::time::{Duration, Instant};

use parsers::{Event, EventKind, Value, fields as pf};

use super::tests::{exec_line, parse};
use super::*;

/// The default rules' alerts for `events` (in order), by rule name.
fn default_alerts(events: &[(Event, Vec<(&str, &str)>)]) -> Vec<String> {
    let loaded = load_str(DEFAULT_RULES_NAME, DEFAULT_RULES).expect("default rules load");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut engine = Engine::new(Arc::new(loaded.set), Duration::ZERO);
    let mut out = Vec::new();
    for (e, labels) in events {
        engine.on_event(e, labels, Instant::now(), &mut out);
    }
    out.into_iter().map(|a| a.rule.to_string()).collect()
}

const CONTAINER: &[(&str, &str)] = &[
    ("container.id", "4f1d0c2a9b3e"),
    ("container.runtime", "containerd"),
    ("k8s.namespace", "default"),
    ("k8s.pod.name", "web-0"),
];

fn host(e: Event) -> (Event, Vec<(&'static str, &'static str)>) {
    (e, vec![])
}

fn in_container(e: Event) -> (Event, Vec<(&'static str, &'static str)>) {
    (e, CONTAINER.to_vec())
}

const OPEN_HEADER: &str = "TIME     UID     PID    COMM              FD ERR FLAGS    PATH";
const TCPSTATES_HEADER: &str = "TIME(s)  SKADDR           PID     COMM             IP LADDR                      LPORT RADDR                      RPORT OLDSTATE    -> NEWSTATE    MS";
const MOUNT_HEADER: &str = "TIME     COMM             PID     TID     MNT_NS      CALL";
const KILL_HEADER: &str = "TIME     PID     COMM             SIG       TPID    RESULT";

fn open_line(line: &str) -> Event {
    parse("opensnoop", OPEN_HEADER, line)
}

#[test]
fn default_shell_in_container() {
    let sh = || exec_line("16:44:23 0     sh               25313  25258    0 /bin/sh -c id ");
    assert_eq!(
        default_alerts(&[in_container(sh())]),
        ["Shell spawned in a container"]
    );
    assert!(
        default_alerts(&[host(sh())]).is_empty(),
        "a shell on the host is normal"
    );
    let cat =
        exec_line("16:44:23 0     cat              25314  25258    0 /usr/bin/cat /etc/hostname ");
    assert!(default_alerts(&[in_container(cat)]).is_empty());
}

/// An exec record of the hot path (`hotpath.exec`): `vpid` is the pid in
/// the process's own pid namespace.
fn hotpath_exec(comm: &str, pid: u32, ppid: u32, vpid: u32) -> Event {
    let mut e = Event::new(std::sync::Arc::from("hotpath.exec"), EventKind::Exec);
    (e.pid, e.ppid, e.uid) = (Some(pid), Some(ppid), Some(0));
    e.comm = Some(parsers::Comm::from_utf8_lossy(comm.as_bytes()));
    e.push(pf::RET, Value::Int(0));
    e.push(pf::PROC_ARGS, Value::Str(format!("/bin/{comm}").into()));
    e.push(pf::PROC_VPID, Value::Int(i64::from(vpid)));
    e
}

#[test]
fn default_container_entrypoint_is_pid_1_of_its_namespace() {
    // the shim (an exec seen earlier) is the parent of both shells below
    let shim = || in_container(hotpath_exec("containerd-shim", 4_000_001, 1, 4_000_001));
    let shell = SHELL_RULE;
    // the entrypoint: pid 1 in the container's namespace
    let entry = hotpath_exec("sh", 4_000_002, 4_000_001, 1);
    assert!(default_alerts(&[shim(), in_container(entry)]).is_empty());
    // a `docker exec` shell already reparented to the shim: not pid 1
    let exec = hotpath_exec("sh", 4_000_003, 4_000_001, 7);
    assert_eq!(default_alerts(&[shim(), in_container(exec)]), [shell]);
    // the host's pid namespace (vpid = pid): the parent decides
    let host_ns = hotpath_exec("sh", 4_000_004, 4_000_001, 4_000_004);
    assert!(default_alerts(&[shim(), in_container(host_ns)]).is_empty());
    // execsnoop's records carry no vpid: the parent decides
    let snoop = exec_line("16:44:23 0     sh               4000005 4000001  0 /bin/sh ");
    assert!(default_alerts(&[shim(), in_container(snoop)]).is_empty());
    let snoop = exec_line("16:44:23 0     sh               4000006 4000099  0 /bin/sh ");
    assert_eq!(default_alerts(&[in_container(snoop)]), [shell]);
}

const SHELL_RULE: &str = "Shell spawned in a container";

#[test]
fn default_sensitive_files() {
    for path in [
        "/etc/shadow",
        "/root/.ssh/id_ed25519",
        "/home/alice/.ssh/id_rsa",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        let e = open_line(&format!(
            "16:44:56 0       28118  cat                3   0 00000000 {path}"
        ));
        assert_eq!(
            default_alerts(&[host(e)]),
            ["Sensitive file opened"],
            "{path}"
        );
    }
    let by_login =
        open_line("16:44:56 0       28118  unix_chkpwd        3   0 00000000 /etc/shadow");
    let failed = open_line("16:44:56 1000    28118  cat               -1  13 00000000 /etc/shadow");
    let passwd = open_line("16:44:56 0       28118  cat                3   0 00000000 /etc/passwd");
    let pubkey = open_line(
        "16:44:56 0       28118  cat                3   0 00000000 /root/.ssh/id_rsa.pub",
    );
    let alerts = default_alerts(&[host(by_login), host(failed), host(passwd)]);
    assert!(alerts.is_empty(), "{alerts:?}");
    // `id_*` also matches public keys: documented as a known noise source
    assert_eq!(default_alerts(&[host(pubkey)]).len(), 1);
}

#[test]
fn default_write_below_binary_dir() {
    let write =
        open_line("16:44:56 0       28118  python3            3   0 01101    /usr/bin/evil");
    assert_eq!(
        default_alerts(&[host(write)]),
        ["Write below a binary directory"]
    );
    let read =
        open_line("16:44:56 0       28118  python3            3   0 02000000 /usr/bin/python3");
    let dpkg = open_line("16:44:56 0       28118  dpkg               3   0 01101    /usr/bin/tool");
    assert!(default_alerts(&[host(read), host(dpkg)]).is_empty());
}

#[test]
fn default_exec_from_tmp() {
    let tmp = exec_line("16:44:23 0     x                25313  25258    0 /tmp/x --mine ");
    let shm = exec_line("16:44:23 0     y                25313  25258    0 /dev/shm/y ");
    assert_eq!(
        default_alerts(&[host(tmp), host(shm)]),
        ["Process executed from a temporary directory"; 2]
    );
    let ok = exec_line("16:44:23 0     true             25313  25258    0 /usr/bin/true /tmp/x ");
    assert!(default_alerts(&[host(ok)]).is_empty());
}

#[test]
fn default_suspicious_outbound_port() {
    let syn = |port: u16| {
        parse(
            "tcpstates",
            TCPSTATES_HEADER,
            &format!(
                "16:45:33 ffff8881026cb780 31251   bash             4  10.0.0.5                   0     203.0.113.9                {port:<5} CLOSE       -> SYN_SENT    0.000"
            ),
        )
    };
    assert_eq!(
        default_alerts(&[host(syn(4444))]),
        ["Outbound connection to a suspicious port"]
    );
    assert!(default_alerts(&[host(syn(443))]).is_empty());
    let established = parse(
        "tcpstates",
        TCPSTATES_HEADER,
        "16:45:33 ffff8881026cb780 31251   bash             4  10.0.0.5                   42416 203.0.113.9                4444  SYN_SENT    -> ESTABLISHED 0.084",
    );
    assert!(
        default_alerts(&[host(established)]).is_empty(),
        "one alert per connection, at SYN_SENT"
    );
}

#[test]
fn default_listen_in_container() {
    let listen = || {
        parse(
            "tcpstates",
            TCPSTATES_HEADER,
            "16:45:33 ffff8881026cdc80 31251   nc               4  0.0.0.0                    4444  0.0.0.0                    0     CLOSE       -> LISTEN      0.000",
        )
    };
    assert_eq!(
        default_alerts(&[in_container(listen())]),
        ["New listening socket in a container"]
    );
    assert!(default_alerts(&[host(listen())]).is_empty());
}

#[test]
fn default_setuid_privilege_change() {
    // setpriv as uid 65534 execs a setuid-root copy of setpriv, which sets
    // uid 0 and execs `id`: same pid, uid 65534 then 0.
    let as_nobody = exec_line(
        "16:44:23 65534 setpriv-suid     4000   3999     0 /opt/t/setpriv-suid --reuid=0 id ",
    );
    let as_root = exec_line("16:44:23 0     id               4000   3999     0 /usr/bin/id ");
    assert_eq!(
        default_alerts(&[host(as_nobody.clone()), host(as_root.clone())]),
        ["Privilege change via setuid binary"]
    );
    // child of a non-root parent running as root
    let parent = exec_line("16:44:23 1000  bash             5000   1        0 /bin/bash ");
    let child = exec_line("16:44:23 0     id               5001   5000     0 /usr/bin/id ");
    assert_eq!(
        default_alerts(&[host(parent), host(child)]),
        ["Privilege change via setuid binary"]
    );
    // root all along, or a uid drop: nothing
    let root1 = exec_line("16:44:23 0     bash             6000   1        0 /bin/bash ");
    let root2 = exec_line("16:44:23 0     id               6001   6000     0 /usr/bin/id ");
    let drop = exec_line("16:44:23 1000  id               6000   1        0 /usr/bin/id ");
    assert!(default_alerts(&[host(root1), host(root2), host(drop)]).is_empty());
}

#[test]
fn default_mount_in_container() {
    let mount = || {
        parse(
            "mountsnoop",
            MOUNT_HEADER,
            "16:44:47 mount            27615   27615   4026531832  mount(\"/dev/sda1\", \"/mnt/host\", \"ext4\", 0x0, \"\") = 0",
        )
    };
    assert_eq!(
        default_alerts(&[in_container(mount())]),
        ["Mount inside a container"]
    );
    assert!(default_alerts(&[host(mount())]).is_empty());
    let umount = parse(
        "mountsnoop",
        MOUNT_HEADER,
        "16:44:47 umount           27616   27616   4026531832  umount(\"/mnt/host\", 0x0) = 0",
    );
    assert!(default_alerts(&[in_container(umount)]).is_empty());
    // the hot path's move_mount (the new mount API's attach step)
    let mut moved = Event::new(std::sync::Arc::from("hotpath.mount"), EventKind::Mount);
    (moved.pid, moved.comm) = (Some(27617), Some(parsers::Comm::from_utf8_lossy(b"evil")));
    moved.push(pf::MOUNT_OP, Value::Str("move_mount".into()));
    moved.push(pf::MOUNT_SOURCE, Value::Str("".into()));
    moved.push(pf::MOUNT_TARGET, Value::Str("/mnt/host".into()));
    moved.push(pf::RET, Value::Int(0));
    assert_eq!(
        default_alerts(&[in_container(moved)]),
        ["Mount inside a container"]
    );
}

#[test]
fn default_kill_other_users_process() {
    let victim = exec_line("16:44:23 1001  sleep            7000   1        0 /usr/bin/sleep 100 ");
    let killer =
        exec_line("16:44:23 65534 kill             7100   1        0 /usr/bin/kill -TERM 7000 ");
    let kill = parse(
        "killsnoop",
        KILL_HEADER,
        "16:44:42 7100    kill             15        7000    -1    ",
    );
    assert_eq!(
        default_alerts(&[host(victim.clone()), host(killer), host(kill)]),
        ["Kill signal to another user's process"]
    );
    // the same user, or root, or an unknown target: nothing
    let own =
        exec_line("16:44:23 1001  kill             7200   1        0 /usr/bin/kill -TERM 7000 ");
    let own_kill = parse(
        "killsnoop",
        KILL_HEADER,
        "16:44:42 7200    kill             15        7000    0     ",
    );
    let root =
        exec_line("16:44:23 0     kill             7300   1        0 /usr/bin/kill -TERM 7000 ");
    let root_kill = parse(
        "killsnoop",
        KILL_HEADER,
        "16:44:42 7300    kill             15        7000    0     ",
    );
    let unknown = parse(
        "killsnoop",
        KILL_HEADER,
        "16:44:42 7100    kill             15        9999    -3    ",
    );
    let alerts = default_alerts(&[
        host(victim),
        host(own),
        host(own_kill),
        host(root),
        host(root_kill),
        host(unknown),
    ]);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn default_kill_rule_reads_sigsnoop_too() {
    let victim = exec_line("16:44:23 1001  sleep            7000   1        0 /usr/bin/sleep 100 ");
    let killer =
        exec_line("16:44:23 65534 kill             7100   1        0 /usr/bin/kill -TERM 7000 ");
    let signal = parse(
        "sigsnoop",
        KILL_HEADER,
        "16:44:42 7100    kill             15        7000    0     ",
    );
    assert_eq!(
        default_alerts(&[host(victim), host(killer), host(signal)]),
        ["Kill signal to another user's process"]
    );
}

#[test]
fn default_rules_file_is_the_built_in_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/default.toml");
    assert_eq!(std::fs::read_to_string(path).unwrap(), DEFAULT_RULES);
    assert!(load_with_defaults(&[]).unwrap().set.rules().len() >= 9);
}
