//! An OCI/Docker seccomp profile (the JSON `docker run --security-opt
//! seccomp=FILE` and the OCI runtime spec read): default action
//! `SCMP_ACT_ERRNO` returning EPERM, this host's architecture, and one
//! `SCMP_ACT_ALLOW` rule with the syscalls the workload made, by name,
//! plus one with the runtime's (see [`super::runtime`]) it did not make.

use std::{collections::BTreeSet, time::Duration};

use serde::Serialize;

use super::runtime::RUNC_AFTER_FILTER;
use crate::live::Recorded;

/// EPERM, returned by every syscall the profile does not allow.
const EPERM: u32 = 1;

/// Where the syscalls came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// The running agent's counts since it started.
    Agent,
    /// A recording of this long.
    Recording(Duration),
}

impl Source {
    /// In words, for the profile's comment.
    pub(crate) fn describe(self) -> String {
        match self {
            Source::Agent => "counted by the running agent since it started".into(),
            Source::Recording(d) => format!(
                "recorded for {} by eunomia advise seccomp --for",
                humantime::format_duration(d)
            ),
        }
    }
}

/// The profile.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    /// What this profile is and what it cannot know (ignored by runtimes).
    pub(crate) comment: String,
    /// `SCMP_ACT_ERRNO`: every syscall not allowed fails.
    pub(crate) default_action: &'static str,
    /// With EPERM.
    pub(crate) default_errno_ret: u32,
    /// This host's architecture (`SCMP_ARCH_X86_64`, `SCMP_ARCH_AARCH64`).
    pub(crate) architectures: Vec<&'static str>,
    /// The allow rules.
    pub(crate) syscalls: Vec<Rule>,
}

/// One rule: these syscalls get this action.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rule {
    /// The syscalls, by name.
    pub(crate) names: Vec<String>,
    /// `SCMP_ACT_ALLOW`.
    pub(crate) action: &'static str,
    /// Why they are allowed.
    pub(crate) comment: String,
}

/// The libseccomp name of the architecture this binary runs on.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        _ => "SCMP_ARCH_NATIVE",
    }
}

impl Profile {
    /// The profile allowing what `r` did (and what the runtime needs).
    pub(crate) fn from_recorded(r: &Recorded, source: Source) -> Profile {
        let seen: BTreeSet<String> = r
            .syscalls
            .keys()
            .filter(|n| n.as_str() != "unknown")
            .cloned()
            .collect();
        let runtime: Vec<String> = RUNC_AFTER_FILTER
            .iter()
            .filter(|n| !seen.contains(**n))
            .map(|n| (*n).to_owned())
            .collect();
        let who = format!("{} {} ({})", r.kind.as_str(), r.name, r.container_id);
        let mut syscalls = vec![Rule {
            names: seen.into_iter().collect(),
            action: "SCMP_ACT_ALLOW",
            comment: format!("syscalls {who} made, {}", source.describe()),
        }];
        if !runtime.is_empty() {
            syscalls.push(Rule {
                names: runtime,
                action: "SCMP_ACT_ALLOW",
                comment: "needed by the container runtime (runc) after it installs the filter, \
                          to start the container"
                    .into(),
            });
        }
        Profile {
            comment: format!(
                "eunomia advise seccomp for {who}: allows only the syscalls seen ({}); code paths \
                 not exercised while watched are denied with EPERM",
                source.describe()
            ),
            default_action: "SCMP_ACT_ERRNO",
            default_errno_ret: EPERM,
            architectures: vec![host_architecture()],
            syscalls,
        }
    }

    /// How many syscalls the profile allows.
    pub(crate) fn allowed_count(&self) -> usize {
        self.syscalls.iter().map(|r| r.names.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::RowKind;

    #[test]
    fn allows_what_was_seen_and_what_runc_needs() {
        let mut r = Recorded {
            key: "abc".into(),
            kind: RowKind::Container,
            name: "web".into(),
            container_id: "abc".into(),
            ..Recorded::default()
        };
        r.syscalls.insert("read".into(), 3);
        r.syscalls.insert("accept4".into(), 1);
        r.syscalls.insert("unknown".into(), 1);
        let p = Profile::from_recorded(&r, Source::Agent);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(v["architectures"][0], host_architecture());
        assert_eq!(
            v["syscalls"][0]["names"],
            serde_json::json!(["accept4", "read"])
        );
        assert_eq!(v["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
        let runtime = v["syscalls"][1]["names"].as_array().unwrap();
        assert!(runtime.contains(&"execve".into()));
        assert!(
            !runtime.contains(&"read".into()),
            "seen ones are not repeated"
        );
        assert_eq!(p.allowed_count(), 2 + RUNC_AFTER_FILTER.len() - 1);
    }
}
