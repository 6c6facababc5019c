//! The `[hotpath]` section of the configuration: which probes are on and
//! how big their kernel tables are.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// Which hot-path probes to load.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotpathConfig {
    /// Count syscalls and their errors per cgroup (tp_btf `sys_exit`):
    /// `true` or `"exact"` (every syscall), `"sampled"` (the probe is
    /// attached for a fraction of each interval and the counts are scaled,
    /// marked `estimate = "sampled"`), `false` or `"off"`.
    #[serde(deserialize_with = "syscall_counting")]
    pub syscalls: SyscallCounting,
    /// TCP sessions per cgroup and peer (`sock:inet_sock_set_state`,
    /// `tcp:tcp_receive_reset`, `tcp:tcp_send_reset`).
    pub tcp: bool,
    /// pid → cgroup map filled at fork/exec (`sched:sched_process_*`).
    pub pids: bool,
    /// One exec event per successful exec (tp_btf `sched_process_exec`,
    /// through a ring buffer): what execsnoop reports, without its syscall
    /// tracepoints (which put every syscall of the machine on the tracing
    /// path). Off while a tool that reports execs (execsnoop) runs.
    pub execs: bool,
    /// One mount event per mount, umount2 and move_mount, from the syscall
    /// probe's `sys_exit` program (so only while `syscalls` counts, and
    /// while it is attached in sampled mode): what mountsnoop reports,
    /// without its syscall tracepoints. Off while a tool that reports
    /// mounts (mountsnoop) runs.
    pub mounts: bool,
    /// Cgroups the syscall table holds at once (2..=65536, including one
    /// overflow slot). Memory: 8 KiB × CPUs × slots.
    #[serde(deserialize_with = "slots")]
    pub cgroup_slots: u32,
    /// How long an exited process stays resolvable in the pid map.
    #[serde(with = "humantime_serde")]
    pub pid_grace: Duration,
    /// Keep the uid of every process current at setuid/setreuid/setresuid
    /// (syscall tracepoints, which put every syscall of the machine on the
    /// tracing path): set by the agent when a tool whose records carry a
    /// uid other than at exec runs. Without it the pid map still has the
    /// uid at fork, exec and exit, and live processes are read in /proc.
    #[serde(skip)]
    pub uid_changes: bool,
    /// Count newlines in the paths of open/stat syscalls (set by the agent
    /// when opensnoop or statsnoop runs: their records are checked with it).
    #[serde(skip)]
    pub path_strings: bool,
    /// Count newlines in the strings of mount/umount (set when mountsnoop
    /// runs).
    #[serde(skip)]
    pub mount_strings: bool,
    /// HTTP capture (set by the agent from `[http]`): rides on the
    /// syscall probe's `sys_exit` program; its maps go to the HTTP source.
    #[serde(skip)]
    pub http: Option<HttpCapture>,
}

/// What the kernel's HTTP capture sends to user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpCapture {
    /// Every request as a record; else only those spans need (sampled
    /// call chains, errors, slow ones), the RED histograms being counted
    /// in the kernel.
    pub every_request: bool,
    /// A request is sampled when its lot (32 bits of a hash both ends of
    /// its connection compute) is below this (`ratio * 2^32`).
    pub sample_below: u64,
    /// A request at least this slow (ns) is always sent.
    pub slow_ns: u64,
}

impl HttpCapture {
    /// Every request as a record (`eunomia http`, `[http] records = "all"`).
    pub const EVERY_REQUEST: HttpCapture = HttpCapture {
        every_request: true,
        sample_below: 0,
        slow_ns: u64::MAX,
    };

    /// Records for the spans of a share `ratio` (0 to 1) of the call
    /// chains, and for every request at least `slow` slow or failed.
    pub fn sampled(ratio: f64, slow: std::time::Duration) -> HttpCapture {
        HttpCapture {
            every_request: false,
            sample_below: (ratio.clamp(0.0, 1.0) * 4_294_967_296.0) as u64,
            slow_ns: u64::try_from(slow.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

impl Default for HotpathConfig {
    fn default() -> Self {
        Self {
            syscalls: SyscallCounting::Exact,
            tcp: true,
            pids: true,
            execs: true,
            mounts: true,
            cgroup_slots: hotpath_common::DEFAULT_CGROUP_SLOTS,
            pid_grace: Duration::from_secs(60),
            uid_changes: false,
            path_strings: false,
            mount_strings: false,
            http: None,
        }
    }
}

impl HotpathConfig {
    /// Turns on the string and uid checks that records of tools of these
    /// event kinds need (exec, exit, kill, mount and TCP records carry no
    /// uid, or the uid at exec, which the pid map has without them).
    pub fn check_strings_of(&mut self, kinds: impl IntoIterator<Item = parsers::EventKind>) {
        use parsers::EventKind as K;
        for kind in kinds {
            match kind {
                K::Open | K::Stat => {
                    self.path_strings = true;
                    self.uid_changes = true;
                }
                K::Mount => {
                    self.mount_strings = true;
                    self.mounts = false;
                }
                K::Exec => self.execs = false,
                K::Exit | K::Kill | K::Signal | K::TcpState => {}
                _ => self.uid_changes = true,
            }
        }
    }

    /// Whether the `sys_exit` program reports mounts: asked for, and the
    /// syscall probe it rides on is on.
    pub(crate) fn mounts_from_sys_exit(&self) -> bool {
        self.mounts && self.syscalls.on()
    }

    /// Whether any probe is on.
    pub(crate) fn any(&self) -> bool {
        self.syscalls.on() || self.tcp || self.pids
    }
}

/// How syscalls are counted (`[hotpath] syscalls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyscallCounting {
    /// Not counted.
    Off,
    /// Every syscall counted (the probe always attached).
    #[default]
    Exact,
    /// The probe attached for [`SAMPLED_FRACTION`] of each interval, the
    /// counts scaled by the inverse of the time it was attached.
    Sampled,
}

/// The fraction of each interval the syscall probe is attached in sampled mode.
pub const SAMPLED_FRACTION: f64 = 0.1;

impl SyscallCounting {
    /// Whether syscalls are counted at all.
    pub(crate) fn on(self) -> bool {
        self != SyscallCounting::Off
    }
}

fn syscall_counting<'de, D: Deserializer<'de>>(d: D) -> Result<SyscallCounting, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bool(true) => Ok(SyscallCounting::Exact),
        Raw::Bool(false) => Ok(SyscallCounting::Off),
        Raw::Text(t) => match t.as_str() {
            "exact" => Ok(SyscallCounting::Exact),
            "sampled" => Ok(SyscallCounting::Sampled),
            "off" => Ok(SyscallCounting::Off),
            other => Err(D::Error::custom(format!(
                "hotpath.syscalls = \"{other}\": expected \"exact\", \"sampled\", \"off\", true or false"
            ))),
        },
    }
}

fn slots<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if !(2..=65_536).contains(&n) {
        return Err(D::Error::custom(format!(
            "hotpath.cgroup_slots = {n} is out of range (2..=65536)"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_can_be_turned_off_and_slots_are_checked() {
        let c: HotpathConfig = toml::from_str("tcp = false\ncgroup_slots = 64\n").unwrap();
        assert!(c.syscalls == SyscallCounting::Exact && !c.tcp && c.pids);
        assert_eq!(c.cgroup_slots, 64);
        assert!(toml::from_str::<HotpathConfig>("cgroup_slots = 1\n").is_err());
        assert!(toml::from_str::<HotpathConfig>("bogus = 1\n").is_err());
    }

    #[test]
    fn syscall_counting_is_a_bool_or_a_mode() {
        let mode = |v: &str| {
            toml::from_str::<HotpathConfig>(&format!("syscalls = {v}\n")).map(|c| c.syscalls)
        };
        assert_eq!(mode("true").unwrap(), SyscallCounting::Exact);
        assert_eq!(mode("false").unwrap(), SyscallCounting::Off);
        assert_eq!(mode("\"exact\"").unwrap(), SyscallCounting::Exact);
        assert_eq!(mode("\"sampled\"").unwrap(), SyscallCounting::Sampled);
        assert_eq!(mode("\"off\"").unwrap(), SyscallCounting::Off);
        let err = mode("\"sometimes\"").unwrap_err().to_string();
        assert!(
            err.contains("sometimes") && err.contains("sampled"),
            "{err}"
        );
    }

    #[test]
    fn uid_probes_only_for_tools_whose_records_carry_a_uid() {
        use parsers::EventKind as K;
        let mut c = HotpathConfig::default();
        c.check_strings_of([K::Exec, K::Exit, K::Kill, K::Mount, K::TcpState]);
        assert!(!c.uid_changes && c.mount_strings && !c.path_strings);
        // mountsnoop reports mounts: the hot path does not too
        assert!(!c.mounts && !c.mounts_from_sys_exit());
        c.check_strings_of([K::Open]);
        assert!(c.uid_changes && c.path_strings);
    }
}
