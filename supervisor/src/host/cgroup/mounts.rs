//! Where the cgroup hierarchies are mounted, from `/proc/self/mountinfo`.
//!
//! Three layouts exist: pure v2 (`cgroup2` at `/sys/fs/cgroup`), hybrid (v1
//! controllers under `/sys/fs/cgroup/<controller>` and `cgroup2` at
//! `/sys/fs/cgroup/unified`) and pure v1 (no `cgroup2` mount at all).

use std::path::{Path, PathBuf};

/// The cgroup mounts of this mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// The v2 (unified) hierarchy, if mounted.
    pub v2: Option<PathBuf>,
    /// The v1 hierarchies: mount point and the controllers bound to it
    /// (named hierarchies appear as `name=systemd`).
    pub(crate) v1: Vec<V1Mount>,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    /// Where it is mounted.
    pub(crate) mount_point: PathBuf,
    /// Its controllers (`cpu`, `cpuacct`, `memory`, `name=systemd`, ...).
    pub(crate) controllers: Vec<String>,
}

impl CgroupMounts {
    /// Reads `/proc/self/mountinfo`; an unreadable file means no cgroups.
    pub fn detect() -> CgroupMounts {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Parses the text of a `mountinfo` file. The first `cgroup2` mount wins;
    /// a v1 hierarchy mounted twice is kept once.
    pub(crate) fn parse(mountinfo: &str) -> CgroupMounts {
        let mut mounts = CgroupMounts::default();
        for line in mountinfo.lines() {
            let Some(entry) = parse_line(line) else {
                continue;
            };
            match entry.fs_type {
                "cgroup2" if mounts.v2.is_none() => mounts.v2 = Some(entry.mount_point),
                "cgroup" => {
                    let controllers = v1_controllers(entry.super_options);
                    if !controllers.is_empty()
                        && !mounts.v1.iter().any(|m| m.controllers == controllers)
                    {
                        mounts.v1.push(V1Mount {
                            mount_point: entry.mount_point,
                            controllers,
                        });
                    }
                }
                _ => {}
            }
        }
        mounts
    }

    /// The mount point of the v1 hierarchy that carries `controller`.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
            .map(|m| m.mount_point.as_path())
    }
}

/// The fields of one mountinfo line that matter here.
struct MountEntry<'a> {
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`
fn parse_line(line: &str) -> Option<MountEntry<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fs_type = right.next()?;
    let _source = right.next()?;
    let super_options = right.next().unwrap_or("");
    Some(MountEntry {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        fs_type,
        super_options,
    })
}

/// The controllers in a v1 mount's super options (`rw,cpu,cpuacct` →
/// `cpu`, `cpuacct`); generic options are left out.
fn v1_controllers(super_options: &str) -> Vec<String> {
    const GENERIC: &[&str] = &[
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
        "nsdelegate",
    ];
    super_options
        .split(',')
        .filter(|o| !GENERIC.contains(o) && !o.starts_with("release_agent="))
        .map(str::to_owned)
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn hybrid_layout() {
        let m = CgroupMounts::parse(HYBRID);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(
            m.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            m.v1_mount("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            m.v1_mount("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(m.v1_mount("pids"), None);
    }

    #[test]
    fn pure_v2_layout() {
        let m = CgroupMounts::parse(
            "25 20 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert!(m.v1.is_empty());
    }

    #[test]
    fn escaped_mount_points() {
        let m = CgroupMounts::parse("1 2 0:1 / /mnt/a\\040b rw - cgroup2 none rw\n");
        assert_eq!(m.v2.as_deref(), Some(Path::new("/mnt/a b")));
    }

    #[test]
    fn this_host_parses() {
        // Whatever the host, detection must not panic.
        let _ = CgroupMounts::detect();
    }
}
