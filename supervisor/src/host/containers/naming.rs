//! What a cgroup path says about the workload in it: the naming schemes of
//! the container runtimes, of the kubelet's pod cgroups and of systemd.
//!
//! The same names appear in v1, v2 and hybrid layouts; only the path
//! relative to the hierarchy's root is looked at. Examples:
//!
//! | path | result |
//! | --- | --- |
//! | `/docker/<id>` | docker container (cgroupfs driver) |
//! | `/system.slice/docker-<id>.scope` | docker container (systemd driver) |
//! | `/kubepods/burstable/pod<uid>/<id>` | containerd container in a burstable pod |
//! | `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<u_i_d>.slice/cri-containerd-<id>.scope` | containerd container in a best-effort pod |
//! | `/machine.slice/libpod-<id>.scope` | podman container |
//! | `/kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope` | CRI-O container in a guaranteed pod |
//! | `/system.slice/nginx.service` | systemd service `nginx` |
//! | `/<namespace>/<id>` | maybe a plain containerd task; the resolver confirms it |

use model::{QosClass, Runtime};

/// What a cgroup path names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Classification {
    /// The outermost container on the path: runtime and full id.
    pub(crate) container: Option<(Runtime, String)>,
    /// The pod: uid (with '-', as Kubernetes spells it) and QoS class.
    pub(crate) pod: Option<(String, QosClass)>,
    /// The innermost systemd service above any container (`nginx` for
    /// `nginx.service`).
    pub(crate) service: Option<String>,
    /// `/<namespace>/<id>`, where plain containerd (`ctr`, nerdctl with
    /// the cgroupfs driver) puts its tasks: (namespace, id). Any cgroup can
    /// have this shape, so it names a container only once containerd's
    /// state shows such a task.
    pub(crate) containerd_task: Option<(String, String)>,
}

impl Classification {
    /// Whether the path names anything at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.container.is_none() && self.pod.is_none() && self.service.is_none()
    }
}

/// Classifies a cgroup path relative to its hierarchy's root.
pub(crate) fn classify(path: &str) -> Classification {
    let mut out = Classification::default();
    let mut parent = "";
    let mut in_kubepods = false;
    for component in path.split('/').filter(|c| !c.is_empty()) {
        in_kubepods |= component.starts_with("kubepods") || component.contains("-kubepods");
        if in_kubepods && out.pod.is_none() {
            out.pod = pod_of(component, parent);
        }
        out.container = container_of(component, parent, out.pod.is_some());
        if out.container.is_some() {
            break;
        }
        if let Some(service) = component.strip_suffix(".service") {
            out.service = Some(service.to_owned());
        }
        parent = component;
    }
    if out.pod.is_some() {
        // Pods are not systemd services, whatever slices they sit in.
        out.service = None;
    }
    if out.is_empty() {
        out.containerd_task = containerd_task_of(path);
    }
    out
}

/// `/<namespace>/<id>` with two plain names that no other scheme claims.
fn containerd_task_of(path: &str) -> Option<(String, String)> {
    let mut parts = path.split('/').filter(|c| !c.is_empty());
    let (namespace, id) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    const SYSTEMD: &[&str] = &[".slice", ".scope", ".service", ".mount", ".socket"];
    const OTHERS: &[&str] = &["docker", "kubepods", "libpod_parent", "machine", "lxc"];
    let plain = |s: &str| {
        super::runtimes::is_plain_name(s) && !SYSTEMD.iter().any(|suffix| s.ends_with(suffix))
    };
    (plain(namespace) && plain(id) && !OTHERS.contains(&namespace))
        .then(|| (namespace.to_owned(), id.to_owned()))
}

/// The container a single path component names, given its parent component
/// and whether a pod cgroup is above it.
fn container_of(component: &str, parent: &str, in_pod: bool) -> Option<(Runtime, String)> {
    const PREFIXES: &[(&str, Runtime)] = &[
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("libpod-", Runtime::Podman),
    ];
    let name = component.strip_suffix(".scope").unwrap_or(component);
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = name.strip_prefix(prefix) {
            // `crio-conmon-<id>` and `libpod-conmon-<id>` hold the monitor,
            // not the container; they fail the hex check.
            return is_container_id(id).then(|| (*runtime, id.to_owned()));
        }
    }
    if !is_container_id(component) {
        return None;
    }
    match parent {
        "docker" => Some((Runtime::Docker, component.to_owned())),
        _ if in_pod => Some((Runtime::Containerd, component.to_owned())),
        _ => None,
    }
}

/// The pod a path component names: `pod<uid>` (cgroupfs driver, QoS from the
/// parent) or `kubepods[-<qos>]-pod<u_i_d>.slice` (systemd driver, which
/// escapes '-' in the uid as '_').
fn pod_of(component: &str, parent: &str) -> Option<(String, QosClass)> {
    if let Some(uid) = component.strip_prefix("pod") {
        let qos = match parent {
            "burstable" => QosClass::Burstable,
            "besteffort" => QosClass::BestEffort,
            _ => QosClass::Guaranteed,
        };
        return is_pod_uid(uid).then(|| (uid.to_owned(), qos));
    }
    let slice = component.strip_suffix(".slice")?;
    let (prefix, escaped) = slice.rsplit_once("-pod")?;
    let uid = escaped.replace('_', "-");
    if !is_pod_uid(&uid) {
        return None;
    }
    let qos = if prefix.ends_with("-burstable") {
        QosClass::Burstable
    } else if prefix.ends_with("-besteffort") {
        QosClass::BestEffort
    } else {
        QosClass::Guaranteed
    };
    Some((uid, qos))
}

/// Container ids are hex: 64 digits for every runtime here; at least 12
/// (docker's short form) is accepted.
fn is_container_id(s: &str) -> bool {
    (12..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Pod uids are UUIDs (36 characters), or for static pods the 32-digit hex
/// hash of their manifest.
fn is_pod_uid(s: &str) -> bool {
    (32..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e8c1a9b2d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const UID: &str = "5a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";

    fn uid_escaped() -> String {
        UID.replace('-', "_")
    }

    fn container(path: &str) -> Option<(Runtime, String)> {
        classify(path).container
    }

    #[test]
    fn docker_cgroupfs_and_systemd() {
        assert_eq!(
            container(&format!("/docker/{ID}")),
            Some((Runtime::Docker, ID.into()))
        );
        assert_eq!(
            container(&format!("/system.slice/docker-{ID}.scope")),
            Some((Runtime::Docker, ID.into()))
        );
        // A nested cgroup inside the container still names it.
        assert_eq!(
            container(&format!("/system.slice/docker-{ID}.scope/init.scope")),
            Some((Runtime::Docker, ID.into()))
        );
        // systemd's service around dockerd is not the container.
        assert_eq!(
            classify("/system.slice/docker.service").service.as_deref(),
            Some("docker")
        );
    }

    #[test]
    fn containerd_in_kubepods_systemd() {
        let c = classify(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
            uid_escaped()
        ));
        assert_eq!(c.container, Some((Runtime::Containerd, ID.into())));
        assert_eq!(c.pod, Some((UID.into(), QosClass::Burstable)));
        assert_eq!(c.service, None);
    }

    #[test]
    fn kubepods_cgroupfs_qos_classes() {
        for (mid, qos) in [
            ("burstable/", QosClass::Burstable),
            ("besteffort/", QosClass::BestEffort),
            ("", QosClass::Guaranteed),
        ] {
            let c = classify(&format!("/kubepods/{mid}pod{UID}/{ID}"));
            assert_eq!(c.container, Some((Runtime::Containerd, ID.into())), "{mid}");
            assert_eq!(c.pod, Some((UID.into(), qos)), "{mid}");
        }
    }

    #[test]
    fn kubepods_systemd_qos_classes() {
        let u = uid_escaped();
        for (path, qos) in [
            (
                format!("/kubepods.slice/kubepods-pod{u}.slice"),
                QosClass::Guaranteed,
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice"
                ),
                QosClass::BestEffort,
            ),
        ] {
            let c = classify(&path);
            assert_eq!(c.pod, Some((UID.into(), qos)), "{path}");
            assert_eq!(c.container, None);
        }
    }

    #[test]
    fn crio_and_podman() {
        let c = classify(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope",
            uid_escaped()
        ));
        assert_eq!(c.container, Some((Runtime::CriO, ID.into())));
        assert_eq!(
            container(&format!(
                "/kubepods.slice/kubepods-pod{}.slice/crio-conmon-{ID}.scope",
                uid_escaped()
            )),
            None
        );
        assert_eq!(
            container(&format!("/machine.slice/libpod-{ID}.scope")),
            Some((Runtime::Podman, ID.into()))
        );
        assert_eq!(
            container(&format!("/libpod_parent/libpod-{ID}")),
            Some((Runtime::Podman, ID.into()))
        );
        assert_eq!(
            container(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        // Rootless podman under the user's manager.
        let c = classify(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
        ));
        assert_eq!(c.container, Some((Runtime::Podman, ID.into())));
    }

    #[test]
    fn systemd_services() {
        assert_eq!(
            classify("/system.slice/nginx.service").service.as_deref(),
            Some("nginx")
        );
        assert_eq!(
            classify("/system.slice/getty@tty1.service")
                .service
                .as_deref(),
            Some("getty@tty1")
        );
        assert_eq!(
            classify("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service")
                .service
                .as_deref(),
            Some("foo")
        );
        assert!(classify("/user.slice/user-0.slice/session-3.scope").is_empty());
        assert!(classify("/").is_empty());
    }

    #[test]
    fn bare_ids_outside_pods_and_docker_are_not_containers() {
        assert_eq!(container(&format!("/{ID}")), None);
        assert_eq!(container("/docker/notanid"), None);
        assert_eq!(container("/kubepods/burstable/podnotauid/x"), None);
    }

    #[test]
    fn plain_containerd_tasks_are_candidates() {
        assert_eq!(
            classify("/e16ns/e16ctr1").containerd_task,
            Some(("e16ns".into(), "e16ctr1".into()))
        );
        assert_eq!(classify("/default/web").container, None);
        for other in [
            "/system.slice/cron.service",
            "/user.slice/user-0.slice",
            "/docker/notanid",
            "/a/b/c",
            "/one",
            "/ns/..",
        ] {
            assert_eq!(classify(other).containerd_task, None, "{other}");
        }
        assert_eq!(
            classify(&format!("/docker/{ID}")).containerd_task,
            None,
            "a docker container is not a containerd candidate"
        );
    }

    #[test]
    fn static_pod_uids_are_hashes() {
        let hash = "d9e3b7c0a1f24e5b8c6d7e8f9a0b1c2d";
        let c = classify(&format!("/kubepods/burstable/pod{hash}/{ID}"));
        assert_eq!(c.pod, Some((hash.into(), QosClass::Burstable)));
    }
}
