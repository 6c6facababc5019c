//! Names from the container runtimes' own files, read only when a cgroup is
//! first resolved (the resolver caches the answer per cgroup):
//!
//! - Docker: `<docker_root>/<id>/config.v2.json` (`Name`, `Config.Image`).
//! - Podman: `<podman_root>/overlay-containers/containers.json` (`names`,
//!   and `image-name` in `metadata`).
//! - containerd (plain `ctr`/nerdctl and its CRI plugin): the task bundle
//!   `<containerd_state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`,
//!   whose OCI annotations hold the container's labels and, for CRI, the
//!   container type (`sandbox` for the pause container), container name,
//!   image and the pod's name, namespace and uid.
//!
//! Everything read here is untrusted: a file that does not parse gives no
//! names, never an error on the hot path.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// The containerd namespace of the CRI plugin.
pub(crate) const CRI_NAMESPACE: &str = "k8s.io";

/// What a runtime's files say about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ContainerFacts {
    /// The container's name (`docker run --name`, the CRI container name).
    pub(crate) name: Option<String>,
    /// The image it was started from, as the user named it.
    pub(crate) image: Option<String>,
    /// The pod, for a CRI container whose bundle names it.
    pub(crate) pod: Option<PodFacts>,
    /// The CRI pod sandbox (pause container), never an app container.
    pub(crate) sandbox: bool,
}

/// A pod as the CRI annotations name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PodFacts {
    /// The pod's name.
    pub(crate) name: Option<String>,
    /// Its namespace.
    pub(crate) namespace: Option<String>,
    /// Its uid.
    pub(crate) uid: Option<String>,
}

/// Where each runtime keeps its per-container files (`None`: not a source).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuntimeFiles {
    /// Docker's container directory (`/var/lib/docker/containers`).
    pub(crate) docker_root: Option<PathBuf>,
    /// Podman's storage root (`/var/lib/containers/storage`).
    pub(crate) podman_root: Option<PathBuf>,
    /// containerd's state directory (`/run/containerd`).
    pub(crate) containerd_state: Option<PathBuf>,
}

impl RuntimeFiles {
    /// Docker's facts about container `id`.
    pub(crate) fn docker(&self, id: &str) -> Option<ContainerFacts> {
        #[derive(Deserialize)]
        struct Config {
            #[serde(rename = "Name")]
            name: Option<String>,
            #[serde(rename = "Config")]
            config: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(rename = "Image")]
            image: Option<String>,
        }
        let file = self.docker_root.as_ref()?.join(id).join("config.v2.json");
        let config: Config = read_json(&file)?;
        Some(ContainerFacts {
            name: non_empty(config.name.as_deref().map(|n| n.trim_start_matches('/'))),
            image: non_empty(config.config.and_then(|c| c.image).as_deref()),
            ..ContainerFacts::default()
        })
    }

    /// Podman's facts about container `id`.
    pub(crate) fn podman(&self, id: &str) -> Option<ContainerFacts> {
        #[derive(Deserialize)]
        struct Entry {
            id: String,
            #[serde(default)]
            names: Vec<String>,
            #[serde(default)]
            metadata: String,
        }
        #[derive(Deserialize, Default)]
        struct Metadata {
            #[serde(rename = "image-name")]
            image_name: Option<String>,
        }
        let file = self
            .podman_root
            .as_ref()?
            .join("overlay-containers/containers.json");
        let entries: Vec<Entry> = read_json(&file)?;
        let entry = entries.into_iter().find(|e| e.id == id)?;
        let metadata: Metadata = serde_json::from_str(&entry.metadata).unwrap_or_default();
        Some(ContainerFacts {
            name: non_empty(entry.names.first().map(String::as_str)),
            image: non_empty(metadata.image_name.as_deref()),
            ..ContainerFacts::default()
        })
    }

    /// containerd's facts about container `id` in `namespace`, from its
    /// task bundle; `None` when no such task runs.
    pub(crate) fn containerd(&self, namespace: &str, id: &str) -> Option<ContainerFacts> {
        let annotations = self.bundle_annotations(namespace, id)?;
        Some(facts_from_annotations(&annotations, id))
    }

    /// Whether containerd runs task `id` in `namespace`.
    pub(crate) fn has_containerd_task(&self, namespace: &str, id: &str) -> bool {
        is_plain_name(namespace)
            && is_plain_name(id)
            && self
                .containerd_tasks()
                .is_some_and(|t| t.join(namespace).join(id).is_dir())
    }

    /// The namespace whose task bundle holds `id`: the CRI namespace first,
    /// then every other one.
    pub(crate) fn containerd_namespace_of(&self, id: &str) -> Option<String> {
        let tasks = self.containerd_tasks()?;
        if tasks.join(CRI_NAMESPACE).join(id).is_dir() {
            return Some(CRI_NAMESPACE.to_owned());
        }
        std::fs::read_dir(&tasks)
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .find(|ns| tasks.join(ns).join(id).is_dir())
    }

    /// The CRI app container `name` of the pod with uid `pod_uid` that
    /// containerd runs: its id and facts (the newest bundle when it
    /// restarted); `None` when no such task runs.
    pub(crate) fn cri_container(
        &self,
        pod_uid: &str,
        name: &str,
    ) -> Option<(String, ContainerFacts)> {
        let dir = self.containerd_tasks()?.join(CRI_NAMESPACE);
        let mut found: Vec<(std::time::SystemTime, String, ContainerFacts)> =
            std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .filter_map(|e| {
                    let id = e.file_name().into_string().ok()?;
                    let facts = self.containerd(CRI_NAMESPACE, &id)?;
                    let pod = facts.pod.as_ref()?;
                    let matches = !facts.sandbox
                        && pod.uid.as_deref() == Some(pod_uid)
                        && facts.name.as_deref() == Some(name);
                    let at = e.metadata().and_then(|m| m.modified()).ok()?;
                    matches.then_some((at, id, facts))
                })
                .collect();
        found.sort_by_key(|(at, _, _)| *at);
        found.pop().map(|(_, id, facts)| (id, facts))
    }

    fn containerd_tasks(&self) -> Option<PathBuf> {
        Some(
            self.containerd_state
                .as_ref()?
                .join("io.containerd.runtime.v2.task"),
        )
    }

    fn bundle_annotations(&self, namespace: &str, id: &str) -> Option<HashMap<String, String>> {
        #[derive(Deserialize)]
        struct Spec {
            #[serde(default)]
            annotations: HashMap<String, String>,
        }
        if !is_plain_name(namespace) || !is_plain_name(id) {
            return None;
        }
        let file = self
            .containerd_tasks()?
            .join(namespace)
            .join(id)
            .join("config.json");
        let spec: Spec = read_json(&file)?;
        Some(spec.annotations)
    }
}

/// The facts the OCI annotations of a containerd bundle hold: CRI's own
/// keys, else the labels `ctr`/nerdctl copied there; a plain container with
/// no name label is named by its id (which `ctr run` takes as its name).
fn facts_from_annotations(annotations: &HashMap<String, String>, id: &str) -> ContainerFacts {
    let get = |key: &str| non_empty(annotations.get(key).map(String::as_str));
    let cri_type = get("io.kubernetes.cri.container-type");
    if let Some(kind) = cri_type {
        let sandbox = kind == "sandbox";
        let pod = PodFacts {
            name: get("io.kubernetes.cri.sandbox-name"),
            namespace: get("io.kubernetes.cri.sandbox-namespace"),
            uid: get("io.kubernetes.cri.sandbox-uid"),
        };
        return ContainerFacts {
            name: if sandbox {
                None
            } else {
                get("io.kubernetes.cri.container-name")
            },
            image: get("io.kubernetes.cri.image-name"),
            pod: Some(pod),
            sandbox,
        };
    }
    ContainerFacts {
        name: get("nerdctl/name")
            .or_else(|| get("io.containerd.container.name"))
            .or_else(|| Some(id.to_owned())),
        image: get("nerdctl/image").or_else(|| get("io.containerd.image.name")),
        ..ContainerFacts::default()
    }
}

/// containerd namespaces and ids: letters, digits, `_`, `-`, `.`; never a
/// path component that walks elsewhere.
pub(crate) fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 76
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn read_json<T: serde::de::DeserializeOwned>(file: &Path) -> Option<T> {
    let text = std::fs::read(file).ok()?;
    serde_json::from_slice(&text).ok()
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn docker_name_and_image() {
        let root = tempfile::tempdir().unwrap();
        write(
            &root.path().join("abc/config.v2.json"),
            r#"{"Name":"/web-1","ID":"abc","Config":{"Image":"eunomia.test/busybox:1"}}"#,
        );
        write(&root.path().join("bad/config.v2.json"), "{not json");
        let files = RuntimeFiles {
            docker_root: Some(root.path().to_path_buf()),
            ..RuntimeFiles::default()
        };
        let facts = files.docker("abc").unwrap();
        assert_eq!(facts.name.as_deref(), Some("web-1"));
        assert_eq!(facts.image.as_deref(), Some("eunomia.test/busybox:1"));
        assert_eq!(files.docker("bad"), None);
        assert_eq!(files.docker("def"), None);
    }

    #[test]
    fn podman_name_and_image_from_storage() {
        let root = tempfile::tempdir().unwrap();
        write(
            &root.path().join("overlay-containers/containers.json"),
            r#"[{"id":"ed5f","names":["e16pod"],"image":"45e8","metadata":"{\"image-name\":\"eunomia.test/busybox:1\",\"name\":\"e16pod\"}"}]"#,
        );
        let files = RuntimeFiles {
            podman_root: Some(root.path().to_path_buf()),
            ..RuntimeFiles::default()
        };
        let facts = files.podman("ed5f").unwrap();
        assert_eq!(facts.name.as_deref(), Some("e16pod"));
        assert_eq!(facts.image.as_deref(), Some("eunomia.test/busybox:1"));
        assert_eq!(files.podman("nope"), None);
    }

    #[test]
    fn containerd_plain_and_cri_bundles() {
        let root = tempfile::tempdir().unwrap();
        let tasks = root.path().join("io.containerd.runtime.v2.task");
        write(
            &tasks.join("e16ns/e16ctr1/config.json"),
            r#"{"annotations":{"io.eunomia.x":"y"}}"#,
        );
        write(
            &tasks.join("e16ns/named/config.json"),
            r#"{"annotations":{"nerdctl/name":"web","nerdctl/image":"nginx:1"}}"#,
        );
        let cri = |kind: &str| {
            format!(
                r#"{{"annotations":{{"io.kubernetes.cri.container-type":"{kind}","io.kubernetes.cri.container-name":"app","io.kubernetes.cri.image-name":"eunomia.test/busybox:1","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"5a1b"}}}}"#
            )
        };
        write(&tasks.join("k8s.io/aaaa/config.json"), &cri("container"));
        write(&tasks.join("k8s.io/bbbb/config.json"), &cri("sandbox"));
        let files = RuntimeFiles {
            containerd_state: Some(root.path().to_path_buf()),
            ..RuntimeFiles::default()
        };
        let plain = files.containerd("e16ns", "e16ctr1").unwrap();
        assert_eq!(plain.name.as_deref(), Some("e16ctr1"));
        assert!(plain.pod.is_none() && !plain.sandbox);
        let named = files.containerd("e16ns", "named").unwrap();
        assert_eq!(
            (named.name.as_deref(), named.image.as_deref()),
            (Some("web"), Some("nginx:1"))
        );
        let app = files.containerd(CRI_NAMESPACE, "aaaa").unwrap();
        assert_eq!(app.name.as_deref(), Some("app"));
        let pod = app.pod.unwrap();
        assert_eq!(
            (
                pod.name.as_deref(),
                pod.namespace.as_deref(),
                pod.uid.as_deref()
            ),
            (Some("web-0"), Some("shop"), Some("5a1b"))
        );
        let pause = files.containerd(CRI_NAMESPACE, "bbbb").unwrap();
        assert!(pause.sandbox);
        assert_eq!(pause.name, None, "the pause sandbox is not the app");
        assert_eq!(files.containerd("e16ns", "gone"), None);
        assert!(files.has_containerd_task("e16ns", "e16ctr1"));
        assert!(!files.has_containerd_task("e16ns", "gone"));
        assert_eq!(files.containerd("..", "e16ns"), None);
        assert_eq!(
            files.containerd_namespace_of("aaaa").as_deref(),
            Some("k8s.io")
        );
        assert_eq!(
            files.containerd_namespace_of("e16ctr1").as_deref(),
            Some("e16ns")
        );
        assert_eq!(files.containerd_namespace_of("zzzz"), None);
    }
}
