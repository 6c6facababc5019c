//! The label keys enrichment attaches to events and samples (OpenTelemetry
//! semantic-convention names where one exists), and [`Labels`], how rules
//! and sinks read them.

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

/// Every label key a rule may name (the enrichment labels, the short
/// namespace alias and the cgroup keys).
pub const ALL: &[&str] = &[
    CONTAINER_ID,
    CONTAINER_NAME,
    CONTAINER_RUNTIME,
    K8S_NAMESPACE,
    K8S_NAMESPACE_ALIAS,
    K8S_POD_NAME,
    K8S_POD_UID,
    SERVICE,
    CGROUP_ID,
    CGROUP_PATH,
];

/// The enrichment labels of an event (container, pod), as rules and sinks
/// read them. Implemented by [`Workload`](crate::Workload) and by label
/// lists.
pub trait Labels {
    /// The value of label `name`, if the event has it.
    fn label(&self, name: &str) -> Option<&str>;
    /// Calls `f` with every label, for alerts.
    fn for_each(&self, f: &mut dyn FnMut(&str, &str));
}

/// No labels (an event that was not enriched).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLabels;

impl Labels for NoLabels {
    fn label(&self, _name: &str) -> Option<&str> {
        None
    }
    fn for_each(&self, _f: &mut dyn FnMut(&str, &str)) {}
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn label(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
    fn for_each(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self {
            f(k.as_ref(), v.as_ref());
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for Vec<(K, V)> {
    fn label(&self, name: &str) -> Option<&str> {
        self.as_slice().label(name)
    }
    fn for_each(&self, f: &mut dyn FnMut(&str, &str)) {
        self.as_slice().for_each(f)
    }
}
