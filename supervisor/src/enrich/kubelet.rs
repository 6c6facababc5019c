//! Pod names from the kubelet's local pod list (`GET /pods` on the kubelet's
//! port, with a service account's bearer token). The list is fetched in the
//! background every refresh interval into a shared snapshot, so a lookup
//! never waits on the network; when the kubelet is unreachable the snapshot
//! stays as it was and the node's files answer instead.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde::Deserialize;

use super::{naming::Runtime, pods::PodName};

/// Why a pod list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The response is not a pod list.
    #[error("the kubelet's pod list is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What the kubelet said, by pod uid and by container id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletPods {
    /// pod uid → namespace and name.
    pub pods: HashMap<String, PodName>,
    /// container id → (runtime from the `containerID` scheme, container name).
    pub containers: HashMap<String, (Option<Runtime>, String)>,
}

/// The snapshot shared between the fetching task and the resolver.
pub type SharedKubeletPods = Arc<RwLock<KubeletPods>>;

#[derive(Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<PodItem>,
}

#[derive(Deserialize)]
struct PodItem {
    metadata: Metadata,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: String,
    uid: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    #[serde(default, rename = "containerID")]
    container_id: String,
}

impl KubeletPods {
    /// Parses the body of the kubelet's `/pods` response.
    pub fn parse(body: &[u8]) -> Result<KubeletPods, KubeletError> {
        let list: PodList = serde_json::from_slice(body)?;
        let mut out = KubeletPods::default();
        for item in list.items {
            let statuses = item
                .status
                .container_statuses
                .into_iter()
                .chain(item.status.init_container_statuses)
                .chain(item.status.ephemeral_container_statuses);
            for status in statuses {
                // `containerd://<id>`; empty while the container is being created.
                if let Some((scheme, id)) = status.container_id.split_once("://") {
                    out.containers
                        .insert(id.to_owned(), (Runtime::from_scheme(scheme), status.name));
                }
            }
            let name = PodName {
                namespace: item.metadata.namespace,
                name: item.metadata.name,
            };
            out.pods.insert(item.metadata.uid, name);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pod_list() {
        let body = br#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
          {"metadata":{"name":"web-0","namespace":"shop","uid":"5a1b2c3d-0000-1111-2222-333344445555"},
           "spec":{},
           "status":{"phase":"Running","qosClass":"Burstable",
             "containerStatuses":[{"name":"nginx","containerID":"cri-o://abc123","ready":true}],
             "initContainerStatuses":[{"name":"init","containerID":"cri-o://def456"}]}},
          {"metadata":{"name":"pending","namespace":"default","uid":"u2"},
           "status":{"containerStatuses":[{"name":"app","containerID":""}]}},
          {"metadata":{"name":"bare","uid":"u3"}}
        ]}"#;
        let pods = KubeletPods::parse(body).unwrap();
        assert_eq!(pods.pods.len(), 3);
        assert_eq!(
            pods.pods["5a1b2c3d-0000-1111-2222-333344445555"],
            PodName {
                namespace: "shop".into(),
                name: "web-0".into()
            }
        );
        assert_eq!(
            pods.containers["abc123"],
            (Some(Runtime::CriO), "nginx".into())
        );
        assert_eq!(pods.containers["def456"].1, "init");
        assert_eq!(pods.containers.len(), 2);
        assert!(KubeletPods::parse(b"not json").is_err());
    }
}
