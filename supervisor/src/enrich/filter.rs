//! Selecting events by who made them: `--container NAME|ID`, `--pod NAME`
//! and `--namespace NAME` of `eunomia tools start`.

use model::Workload;

/// A selection of workloads; every criterion set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WorkloadFilter {
    /// A container's name, full id, or an id prefix (as `docker ps` shows it).
    pub(crate) container: Option<String>,
    /// A pod's name (or uid).
    pub(crate) pod: Option<String>,
    /// A pod's namespace.
    pub(crate) namespace: Option<String>,
}

/// The shortest id prefix accepted, so that `--container 1` cannot match
/// every container whose id starts with a 1.
const MIN_ID_PREFIX: usize = 4;

impl WorkloadFilter {
    /// Whether nothing is selected (every event passes).
    pub(crate) fn is_empty(&self) -> bool {
        self.container.is_none() && self.pod.is_none() && self.namespace.is_none()
    }

    /// Whether the workload (`None`: unknown) is selected.
    pub(crate) fn matches(&self, workload: Option<&Workload>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(w) = workload else {
            return false;
        };
        let container_ok = self.container.as_deref().is_none_or(|want| {
            w.container.as_ref().is_some_and(|c| {
                c.name.as_deref() == Some(want)
                    || c.id == want
                    || (want.len() >= MIN_ID_PREFIX && c.id.starts_with(want))
            })
        });
        let pod = w.pod.as_ref();
        let pod_ok = self.pod.as_deref().is_none_or(|want| {
            pod.is_some_and(|p| p.name.as_deref() == Some(want) || p.uid == want)
        });
        let namespace_ok = self
            .namespace
            .as_deref()
            .is_none_or(|want| pod.is_some_and(|p| p.namespace.as_deref() == Some(want)));
        container_ok && pod_ok && namespace_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Container, Pod, QosClass, Runtime};

    fn workload(name: Option<&str>, pod: Option<(&str, &str)>) -> Workload {
        Workload {
            container: Some(Container {
                id: "07637097db225d08".into(),
                runtime: Runtime::Docker,
                name: name.map(Into::into),
                image: None,
                namespace: None,
                sandbox: false,
            }),
            pod: pod.map(|(ns, name)| Pod {
                uid: "5a1b".into(),
                qos: QosClass::BestEffort,
                namespace: Some(ns.into()),
                name: Some(name.into()),
            }),
            ..Workload::default()
        }
    }

    #[test]
    fn containers_by_name_id_and_prefix() {
        let w = workload(Some("web"), None);
        let by = |c: &str| WorkloadFilter {
            container: Some(c.into()),
            ..WorkloadFilter::default()
        };
        assert!(WorkloadFilter::default().matches(None));
        assert!(by("web").matches(Some(&w)));
        assert!(by("07637097db225d08").matches(Some(&w)));
        assert!(by("0763").matches(Some(&w)));
        assert!(!by("07").matches(Some(&w)), "too short a prefix");
        assert!(!by("db").matches(Some(&w)));
        assert!(!by("web").matches(None));
        assert!(!by("web").matches(Some(&Workload::default())));
    }

    #[test]
    fn pods_and_namespaces() {
        let w = workload(Some("app"), Some(("shop", "web-0")));
        let f = WorkloadFilter {
            pod: Some("web-0".into()),
            namespace: Some("shop".into()),
            ..WorkloadFilter::default()
        };
        assert!(f.matches(Some(&w)));
        let other_ns = WorkloadFilter {
            namespace: Some("kube-system".into()),
            ..f.clone()
        };
        assert!(!other_ns.matches(Some(&w)));
        assert!(!f.matches(Some(&workload(Some("app"), None))));
    }
}
