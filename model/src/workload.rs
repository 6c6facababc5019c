//! The result of enrichment: one small shared value per cgroup that says
//! which container, pod and service an event or sample came from. The
//! enrichment stage writes it; rules, aggregation and sinks read it through
//! [`Labels`].

use std::{fmt, sync::Arc};

use crate::labels::*;

/// Who an event or sample belongs to. Shared (`Arc`) between every event of
/// the same cgroup; cheap to attach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// The cgroup v2 id, when known.
    pub cgroup_id: Option<u64>,
    /// The cgroup path relative to its hierarchy's root; `None` when the
    /// cgroup could not be resolved (gone, or the process exited unseen).
    pub cgroup_path: Option<Arc<str>>,
    /// The container, if the cgroup belongs to one.
    pub container: Option<Container>,
    /// The Kubernetes pod, if the cgroup belongs to one.
    pub pod: Option<Pod>,
    /// The systemd service, for processes of a plain `.service` unit.
    pub service: Option<String>,
}

/// A container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The runtime's full container id (hex).
    pub id: String,
    /// The runtime that named the cgroup.
    pub runtime: Runtime,
    /// The container's name, where the runtime's files or the kubelet show it.
    pub name: Option<String>,
    /// The image it runs, where the runtime's files show it.
    pub image: Option<String>,
    /// The containerd namespace of a plain containerd container.
    pub namespace: Option<String>,
    /// A CRI pod sandbox (pause container): part of the pod, not an app.
    pub sandbox: bool,
}

/// A Kubernetes pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The pod's uid.
    pub uid: String,
    /// Its QoS class, from the kubepods cgroup it sits in.
    pub qos: QosClass,
    /// Its namespace, when the kubelet or `/var/log/pods` show it.
    pub namespace: Option<String>,
    /// Its name, when the kubelet or `/var/log/pods` show it.
    pub name: Option<String>,
}

impl Workload {
    /// A workload nothing is known about.
    pub fn unknown(cgroup_id: Option<u64>) -> Workload {
        Workload {
            cgroup_id,
            ..Workload::default()
        }
    }

    /// Whether the cgroup could be resolved at all.
    pub fn is_known(&self) -> bool {
        self.cgroup_path.is_some()
    }

    /// The labels to attach, with OpenTelemetry semantic-convention keys;
    /// absent values are left out.
    pub fn labels(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let container = self.container.as_ref();
        let pod = self.pod.as_ref();
        [
            (CONTAINER_ID, container.map(|c| c.id.as_str())),
            (CONTAINER_RUNTIME, container.map(|c| c.runtime.as_str())),
            (CONTAINER_NAME, container.and_then(|c| c.name.as_deref())),
            (CONTAINER_IMAGE, container.and_then(|c| c.image.as_deref())),
            (
                CONTAINERD_NAMESPACE,
                container.and_then(|c| c.namespace.as_deref()),
            ),
            (K8S_POD_UID, pod.map(|p| p.uid.as_str())),
            (K8S_POD_NAME, pod.and_then(|p| p.name.as_deref())),
            (K8S_NAMESPACE, pod.and_then(|p| p.namespace.as_deref())),
            (SERVICE, self.service.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }

    /// The value of one label, if set (`k8s.namespace` is accepted for
    /// `k8s.namespace.name`; `cgroup.id` and `cgroup.path` too).
    pub fn label(&self, key: &str) -> Option<&str> {
        match key {
            K8S_NAMESPACE_ALIAS => self.label(K8S_NAMESPACE),
            CGROUP_PATH => self.cgroup_path.as_deref(),
            _ => self.labels().find(|(k, _)| *k == key).map(|(_, v)| v),
        }
    }
}

/// Rules and sinks read a workload's labels (`container.id`, `k8s.pod.name`, ...).
impl Labels for Workload {
    fn label(&self, name: &str) -> Option<&str> {
        Workload::label(self, name)
    }
    fn for_each(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self.labels() {
            f(k, v);
        }
    }
}

/// A container runtime, as told by the cgroup naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Docker (moby), `docker-<id>.scope` or `/docker/<id>`.
    Docker,
    /// containerd's CRI plugin, `cri-containerd-<id>.scope` or a bare id
    /// under a kubepods pod cgroup.
    Containerd,
    /// CRI-O, `crio-<id>.scope`.
    CriO,
    /// Podman (libpod), `libpod-<id>.scope`.
    Podman,
}

impl Runtime {
    /// The name used in the `container.runtime` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }

    /// The runtime named by a Kubernetes `containerID` scheme
    /// (`containerd://…`, `cri-o://…`, `docker://…`).
    pub fn from_scheme(scheme: &str) -> Option<Runtime> {
        match scheme {
            "containerd" => Some(Runtime::Containerd),
            "cri-o" | "crio" => Some(Runtime::CriO),
            "docker" => Some(Runtime::Docker),
            "podman" => Some(Runtime::Podman),
            _ => None,
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes pod's quality-of-service class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Requests equal limits for every resource.
    Guaranteed,
    /// Some requests set.
    Burstable,
    /// No requests or limits.
    BestEffort,
}

impl QosClass {
    /// Kubernetes' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_leave_out_absent_values() {
        let w = Workload {
            cgroup_id: Some(7),
            cgroup_path: Some("/docker/abc".into()),
            container: Some(Container {
                id: "abc".into(),
                runtime: Runtime::Docker,
                name: None,
                image: None,
                namespace: None,
                sandbox: false,
            }),
            pod: None,
            service: None,
        };
        let labels: Vec<_> = w.labels().collect();
        assert_eq!(
            labels,
            vec![(CONTAINER_ID, "abc"), (CONTAINER_RUNTIME, "docker")]
        );
        assert!(Workload::unknown(Some(1)).labels().next().is_none());
        assert!(!Workload::unknown(None).is_known());
    }
}
