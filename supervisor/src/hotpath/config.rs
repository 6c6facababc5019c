//! The `[hotpath]` section of the configuration: which probes are on and
//! how big their kernel tables are.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// Which hot-path probes to load.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotpathConfig {
    /// Count syscalls and their errors per cgroup (tp_btf `sys_exit`).
    pub syscalls: bool,
    /// TCP sessions per cgroup and peer (`sock:inet_sock_set_state`,
    /// `tcp:tcp_receive_reset`, `tcp:tcp_send_reset`).
    pub tcp: bool,
    /// pid → cgroup map filled at fork/exec (`sched:sched_process_*`).
    pub pids: bool,
    /// Cgroups the syscall table holds at once (2..=65536, including one
    /// overflow slot). Memory: 8 KiB × CPUs × slots.
    #[serde(deserialize_with = "slots")]
    pub cgroup_slots: u32,
    /// How long an exited process stays resolvable in the pid map.
    #[serde(with = "humantime_serde")]
    pub pid_grace: Duration,
    /// Count newlines in the paths of open/stat syscalls (set by the agent
    /// when opensnoop or statsnoop runs: their records are checked with it).
    #[serde(skip)]
    pub path_strings: bool,
    /// Count newlines in the strings of mount/umount (set when mountsnoop
    /// runs).
    #[serde(skip)]
    pub mount_strings: bool,
    /// HTTP capture (set by the agent from `[http]` when it is enabled):
    /// rides on the syscall probe's `sys_exit` program.
    #[serde(skip)]
    pub http: Option<crate::http::HttpConfig>,
}

impl Default for HotpathConfig {
    fn default() -> Self {
        Self {
            syscalls: true,
            tcp: true,
            pids: true,
            cgroup_slots: hotpath_common::DEFAULT_CGROUP_SLOTS,
            pid_grace: Duration::from_secs(60),
            path_strings: false,
            mount_strings: false,
            http: None,
        }
    }
}

impl HotpathConfig {
    /// Whether any probe is on.
    /// Turns on the string checks that records of tools of these event
    /// kinds need.
    pub fn check_strings_of(&mut self, kinds: impl IntoIterator<Item = parsers::EventKind>) {
        use parsers::EventKind as K;
        for kind in kinds {
            match kind {
                K::Open | K::Stat => self.path_strings = true,
                K::Mount => self.mount_strings = true,
                _ => {}
            }
        }
    }

    pub fn any(&self) -> bool {
        self.syscalls || self.tcp || self.pids
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
        assert!(c.syscalls && !c.tcp && c.pids);
        assert_eq!(c.cgroup_slots, 64);
        assert!(toml::from_str::<HotpathConfig>("cgroup_slots = 1\n").is_err());
        assert!(toml::from_str::<HotpathConfig>("bogus = 1\n").is_err());
    }
}
