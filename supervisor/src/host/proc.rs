//! `/proc/<pid>/status`: the one reader of a process's name, uids and
//! namespace pids.

/// The fields of `/proc/<pid>/status` the agent reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// `Name:` (the kernel escapes control bytes in it).
    pub(crate) name: Option<String>,
    /// `Uid:`: real, effective, saved and filesystem uid.
    pub(crate) uids: Vec<u32>,
    /// `NSpid:`: the pid in each pid namespace, outermost first.
    pub(crate) ns_pids: Vec<u32>,
}

impl Status {
    /// Reads the status of `pid`; `None` when the process is gone.
    pub(crate) fn read(pid: u32) -> Option<Status> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .map(|text| Status::parse(&text))
    }

    /// Parses the text of a status file; unknown and malformed lines are
    /// left out.
    pub(crate) fn parse(text: &str) -> Status {
        let mut status = Status::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim_start_matches([' ', '\t']);
            let numbers = || value.split_whitespace().filter_map(|n| n.parse().ok());
            match key {
                "Name" => status.name = Some(value.to_owned()),
                "Uid" => status.uids = numbers().collect(),
                "NSpid" => status.ns_pids = numbers().collect(),
                _ => {}
            }
        }
        status
    }

    /// The real uid.
    pub(crate) fn uid(&self) -> Option<u32> {
        self.uids.first().copied()
    }

    /// The pid in the process's own (innermost) pid namespace.
    pub(crate) fn ns_pid(&self) -> Option<u32> {
        self.ns_pids.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_status_file() {
        let s = Status::parse(
            "Name:\tsh\\nx\nUmask:\t0022\nUid:\t1000\t1001\t1002\t1003\nNSpid:\t4242\t7\nbroken\n",
        );
        assert_eq!(s.name.as_deref(), Some("sh\\nx"));
        assert_eq!(s.uid(), Some(1000));
        assert_eq!(s.uids, vec![1000, 1001, 1002, 1003]);
        assert_eq!(s.ns_pid(), Some(7));
    }

    #[test]
    fn own_status() {
        let s = Status::read(std::process::id()).expect("own status");
        assert_eq!(s.uid(), Some(nix::unistd::getuid().as_raw()));
        assert_eq!(s.ns_pid(), Some(std::process::id()));
    }
}
