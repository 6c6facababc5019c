//! The result of enrichment: one small shared value per cgroup that says
//! which container, pod and service an event or sample came from.

use std::sync::Arc;

use super::naming::{QosClass, Runtime};

/// Label key of the container id (OpenTelemetry `container.id`).
pub const CONTAINER_ID: &str = "container.id";
/// Label key of the container runtime (OpenTelemetry `container.runtime`).
pub const CONTAINER_RUNTIME: &str = "container.runtime";
/// Label key of the container name (OpenTelemetry `container.name`).
pub const CONTAINER_NAME: &str = "container.name";
/// Label key of the image name (OpenTelemetry `container.image.name`).
pub const CONTAINER_IMAGE: &str = "container.image.name";
/// Label key of a plain containerd container's namespace.
pub const CONTAINERD_NAMESPACE: &str = "containerd.namespace";
/// Label key of the pod uid (OpenTelemetry `k8s.pod.uid`).
pub const K8S_POD_UID: &str = "k8s.pod.uid";
/// Label key of the pod name (OpenTelemetry `k8s.pod.name`).
pub const K8S_POD_NAME: &str = "k8s.pod.name";
/// Label key of the pod's namespace (OpenTelemetry `k8s.namespace.name`).
pub const K8S_NAMESPACE: &str = "k8s.namespace.name";
/// Short alias of [`K8S_NAMESPACE`] that rules may use (`k8s.namespace`).
pub const K8S_NAMESPACE_ALIAS: &str = "k8s.namespace";
/// Label key of the systemd service (unit name without `.service`).
pub const SERVICE: &str = "service";
/// Label key of the cgroup v2 id, as the hot path and cgroup stats set it.
pub const CGROUP_ID: &str = "cgroup.id";
/// Label key of a cgroup path, set by sources that know no v2 id.
pub const CGROUP_PATH: &str = "cgroup.path";

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

/// Rules read a workload's labels (`container.id`, `k8s.pod.name`, ...).
impl crate::rules::Labels for Workload {
    fn label(&self, name: &str) -> Option<&str> {
        Workload::label(self, name)
    }
    fn for_each(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self.labels() {
            f(k, v);
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
