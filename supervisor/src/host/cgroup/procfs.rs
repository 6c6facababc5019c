//! A process's cgroups from `/proc/PID/cgroup`.
//!
//! Each line is `HIERARCHY-ID:CONTROLLERS:PATH`; the v2 hierarchy is the line
//! `0::PATH`, v1 hierarchies list their controllers (`4:memory:/docker/…`,
//! `1:name=systemd:/…`).

/// The cgroups one process is in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcCgroups {
    /// The v2 path, if the v2 hierarchy is mounted.
    pub(crate) v2: Option<String>,
    /// The v1 paths: (controllers, path).
    pub(crate) v1: Vec<(String, String)>,
}

impl ProcCgroups {
    /// Reads `/proc/PID/cgroup`; `None` when the process is gone.
    pub(crate) fn read(pid: u32) -> Option<ProcCgroups> {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .map(|text| Self::parse(&text))
    }

    /// Parses the text of a `/proc/PID/cgroup` file.
    pub(crate) fn parse(text: &str) -> ProcCgroups {
        let mut out = ProcCgroups::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(hier), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if hier == "0" && controllers.is_empty() {
                out.v2 = Some(path.to_owned());
            } else {
                out.v1.push((controllers.to_owned(), path.to_owned()));
            }
        }
        out
    }

    /// The v1 paths in the order worth trying for container names: the
    /// systemd hierarchy first (runtimes always place processes there), then
    /// the common controllers.
    pub(crate) fn v1_candidates(&self) -> impl Iterator<Item = &str> {
        const ORDER: &[&str] = &["name=systemd", "cpu", "cpuacct", "memory", "pids"];
        let rank = |controllers: &str| {
            ORDER
                .iter()
                .position(|c| controllers.split(',').any(|x| x == *c))
                .unwrap_or(ORDER.len())
        };
        let mut v1: Vec<&(String, String)> = self.v1.iter().collect();
        v1.sort_by_key(|(c, _)| rank(c));
        v1.into_iter().map(|(_, p)| p.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_file() {
        let p = ProcCgroups::parse(
            "9:name=systemd:/system.slice/docker-abc.scope\n4:memory:/docker/abc\n2:cpu,cpuacct:/\n0::/system.slice/docker-abc.scope\n",
        );
        assert_eq!(p.v2.as_deref(), Some("/system.slice/docker-abc.scope"));
        assert_eq!(p.v1.len(), 3);
        let order: Vec<&str> = p.v1_candidates().collect();
        assert_eq!(
            order,
            vec!["/system.slice/docker-abc.scope", "/", "/docker/abc"]
        );
    }

    #[test]
    fn own_process_is_readable() {
        let me = ProcCgroups::read(std::process::id()).expect("own cgroup file");
        assert!(me.v2.is_some() || !me.v1.is_empty());
    }
}
