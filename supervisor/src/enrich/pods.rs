//! Names for pods and containers from the node's own files.
//!
//! The kubelet keeps one log directory per pod,
//! `/var/log/pods/<namespace>_<name>_<uid>/`, with one subdirectory per
//! container name, and one symlink per container,
//! `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`, which ties a
//! container id to its name (the runtimes' own files are read by
//! [`crate::host::containers::runtimes`]). Namespace and pod names cannot contain `_` (they
//! are DNS labels and subdomains), so the splits are exact.
//!
//! The directories are listed again when a lookup finds the listing older
//! than `min_rescan`, so what is kept is bounded by what is on disk and a pod
//! whose directory is gone is simply not found.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use model::Runtime;

use super::kubelet::SharedKubeletPods;

/// A pod's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodName {
    /// The namespace.
    pub(crate) namespace: String,
    /// The pod's name.
    pub(crate) name: String,
}

/// One pod log directory.
#[derive(Debug, Clone)]
struct PodDir {
    pod: PodName,
}

/// Pod and container names from the kubelet's pod list (when configured),
/// `/var/log/pods` and `/var/log/containers`.
#[derive(Debug)]
pub(crate) struct PodDirectory {
    kubelet: Option<SharedKubeletPods>,
    pod_logs: Option<PathBuf>,
    container_logs: Option<PathBuf>,
    min_rescan: Duration,
    pods: HashMap<String, PodDir>,
    /// container id → (pod name, container name)
    containers: HashMap<String, (String, String)>,
    scanned_at: Option<Instant>,
}

impl PodDirectory {
    /// A directory over these roots (any may be absent).
    pub(crate) fn new(
        pod_logs: Option<PathBuf>,
        container_logs: Option<PathBuf>,
        min_rescan: Duration,
    ) -> PodDirectory {
        PodDirectory {
            kubelet: None,
            pod_logs,
            container_logs,
            min_rescan,
            pods: HashMap::new(),
            containers: HashMap::new(),
            scanned_at: None,
        }
    }

    /// Consults `pods` (kept current by the kubelet task) before the files.
    pub(crate) fn set_kubelet(&mut self, pods: SharedKubeletPods) {
        self.kubelet = Some(pods);
    }

    /// The namespace and name of pod `uid`, from the kubelet or the pod's
    /// log directory.
    pub(crate) fn pod(&mut self, uid: &str) -> Option<PodName> {
        if let Some(pod) = self.ask_kubelet(|k| k.pods.get(uid).cloned()) {
            return Some(pod);
        }
        self.rescan_if_due();
        self.pods.get(uid).map(|d| d.pod.clone())
    }

    /// The name of container `id`, exactly from the kubelet or
    /// `/var/log/containers`; never guessed from the pod's container
    /// directories, which would give the pause sandbox the app's name.
    pub(crate) fn container_name(&mut self, id: &str) -> Option<String> {
        if let Some(name) = self.ask_kubelet(|k| k.containers.get(id).map(|c| c.1.clone())) {
            return Some(name);
        }
        self.rescan_if_due();
        self.containers.get(id).map(|(_, name)| name.clone())
    }

    /// The runtime the kubelet reports for container `id` (its
    /// `containerID` scheme), which the cgroup name alone may not tell.
    pub(crate) fn container_runtime(&self, id: &str) -> Option<Runtime> {
        self.ask_kubelet(|k| k.containers.get(id).and_then(|c| c.0))
    }

    fn ask_kubelet<T>(
        &self,
        f: impl FnOnce(&super::kubelet::KubeletPods) -> Option<T>,
    ) -> Option<T> {
        let snapshot = self.kubelet.as_ref()?;
        let pods = crate::sync::read(snapshot);
        f(&pods)
    }

    #[cfg(test)]
    /// How many pods are known (for bounds checks and status).
    pub(crate) fn len(&self) -> usize {
        self.pods.len()
    }

    #[cfg(test)]
    /// Whether no pod is known.
    pub(crate) fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    fn rescan_if_due(&mut self) {
        if self
            .scanned_at
            .is_some_and(|t| t.elapsed() < self.min_rescan)
        {
            return;
        }
        self.scanned_at = Some(Instant::now());
        self.pods = self.pod_logs.as_deref().map(scan_pods).unwrap_or_default();
        self.containers = self
            .container_logs
            .as_deref()
            .map(scan_containers)
            .unwrap_or_default();
    }
}

/// Reads every `<namespace>_<name>_<uid>` directory under `root`.
fn scan_pods(root: &Path) -> HashMap<String, PodDir> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let (namespace, name, uid) = split3(file_name.to_str()?)?;
            let pod = PodName {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            };
            Some((uid.to_owned(), PodDir { pod }))
        })
        .collect()
}

/// Reads every `<pod>_<namespace>_<container>-<id>.log` under `root` into
/// id → (pod, container).
fn scan_containers(root: &Path) -> HashMap<String, (String, String)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let stem = file_name.to_str()?.strip_suffix(".log")?;
            let (rest, id) = stem.rsplit_once('-')?;
            let (pod, _namespace, container) = split3(rest)?;
            Some((id.to_owned(), (pod.to_owned(), container.to_owned())))
        })
        .collect()
}

/// `a_b_c` → (a, b, c); anything else → None.
fn split3(s: &str) -> Option<(&str, &str, &str)> {
    let mut parts = s.split('_');
    let out = (parts.next()?, parts.next()?, parts.next()?);
    let all_set = !out.0.is_empty() && !out.1.is_empty() && !out.2.is_empty();
    (parts.next().is_none() && all_set).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_and_containers_from_log_directories() {
        let root = tempfile::tempdir().unwrap();
        let pods = root.path().join("pods");
        let containers = root.path().join("containers");
        std::fs::create_dir_all(
            pods.join("shop_web-7d9f_5a1b2c3d-0000-1111-2222-333344445555/nginx"),
        )
        .unwrap();
        std::fs::create_dir_all(pods.join("shop_db-0_aaaa2c3d-0000-1111-2222-333344445555/pg"))
            .unwrap();
        std::fs::create_dir_all(pods.join("not-a-pod")).unwrap();
        std::fs::create_dir_all(&containers).unwrap();
        std::fs::write(
            containers.join("web-7d9f_shop_nginx-0123abcd0123abcd.log"),
            b"",
        )
        .unwrap();
        let mut dir = PodDirectory::new(Some(pods.clone()), Some(containers), Duration::ZERO);
        let web = dir.pod("5a1b2c3d-0000-1111-2222-333344445555").unwrap();
        assert_eq!(
            (web.namespace.as_str(), web.name.as_str()),
            ("shop", "web-7d9f")
        );
        assert_eq!(dir.len(), 2);
        assert_eq!(
            dir.container_name("0123abcd0123abcd").as_deref(),
            Some("nginx")
        );
        // An unlisted id (the pause container) gets no name.
        assert_eq!(dir.container_name("ffff"), None);
        // db has one container directory and none listed: still no guess,
        // the unlisted id may be the pod's sandbox.
        assert_eq!(dir.container_name("eeee"), None);
        // A pod that disappears is not found any more.
        std::fs::remove_dir_all(pods.join("shop_db-0_aaaa2c3d-0000-1111-2222-333344445555"))
            .unwrap();
        assert_eq!(dir.pod("aaaa2c3d-0000-1111-2222-333344445555"), None);
    }

    #[test]
    fn the_kubelet_answers_first() {
        let snapshot = SharedKubeletPods::default();
        {
            let mut k = snapshot.write().unwrap();
            k.pods.insert(
                "u1".into(),
                PodName {
                    namespace: "ns".into(),
                    name: "p".into(),
                },
            );
            k.containers
                .insert("c1".into(), (Some(Runtime::CriO), "app".into()));
        }
        let mut dir = PodDirectory::new(None, None, Duration::ZERO);
        assert_eq!(dir.pod("u1"), None);
        dir.set_kubelet(snapshot);
        assert_eq!(dir.pod("u1").unwrap().name, "p");
        assert_eq!(dir.container_name("c1").as_deref(), Some("app"));
        assert_eq!(dir.container_runtime("c1"), Some(Runtime::CriO));
        assert_eq!(dir.container_runtime("c2"), None);
    }

    #[test]
    fn absent_roots_find_nothing() {
        let mut dir = PodDirectory::new(Some("/nonexistent/eunomia".into()), None, Duration::ZERO);
        assert_eq!(dir.pod("x"), None);
        assert_eq!(dir.container_name("y"), None);
        assert!(dir.is_empty());
    }
}
