//! Pod names from the kubelet's local pod list (`GET /pods` on the kubelet's
//! port, with a service account's bearer token). The list is fetched in the
//! background every refresh interval into a shared snapshot, so a lookup
//! never waits on the network; when the kubelet is unreachable the snapshot
//! stays as it was and the node's files answer instead.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use model::Runtime;

use super::{EnrichConfig, pods::PodName};

/// Why a pod list could not be fetched or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubeletError {
    /// The response is not a pod list.
    #[error("the kubelet's pod list is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The request failed (connection, TLS, status).
    #[error("GET {url}: {source}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong.
        #[source]
        source: reqwest::Error,
    },
    /// A configured file could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Fetches the kubelet's pod list.
#[derive(Debug, Clone)]
pub(crate) struct KubeletClient {
    http: reqwest::Client,
    url: String,
    token_file: Option<PathBuf>,
}

impl KubeletClient {
    /// A client for `config.kubelet_url`; `None` when it is unset.
    pub(crate) fn new(config: &EnrichConfig) -> Result<Option<KubeletClient>, KubeletError> {
        let Some(url) = config.kubelet_url.clone() else {
            return Ok(None);
        };
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .danger_accept_invalid_certs(config.kubelet_insecure_tls);
        if let Some(path) = &config.kubelet_ca_file {
            let pem = std::fs::read(path).map_err(|source| KubeletError::File {
                path: path.clone(),
                source,
            })?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|source| KubeletError::Http {
                    url: url.clone(),
                    source,
                })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|source| KubeletError::Http {
            url: url.clone(),
            source,
        })?;
        Ok(Some(KubeletClient {
            http,
            url,
            token_file: config.kubelet_token_file.clone(),
        }))
    }

    /// One `GET` of the pod list.
    pub(crate) async fn fetch(&self) -> Result<KubeletPods, KubeletError> {
        let http = |source| KubeletError::Http {
            url: self.url.clone(),
            source,
        };
        let mut request = self.http.get(&self.url);
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path).map_err(|source| KubeletError::File {
                path: path.clone(),
                source,
            })?;
            request = request.bearer_auth(token.trim());
        }
        let response = request.send().await.map_err(http)?;
        let body = response
            .error_for_status()
            .map_err(http)?
            .bytes()
            .await
            .map_err(http)?;
        KubeletPods::parse(&body)
    }
}

/// Starts the task that keeps `shared` current, when a kubelet URL is
/// configured. A failed fetch is logged (once until the next success) and
/// leaves the snapshot as it was.
pub(crate) fn start(
    config: &EnrichConfig,
    shared: SharedKubeletPods,
    shutdown: CancellationToken,
) -> Result<Option<JoinHandle<()>>, KubeletError> {
    let Some(client) = KubeletClient::new(config)? else {
        return Ok(None);
    };
    let every = config.kubelet_refresh;
    Ok(Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            match client.fetch().await {
                Ok(pods) => {
                    if failing {
                        tracing::info!("kubelet pod list reachable again");
                    }
                    failing = false;
                    *crate::sync::write(&shared) = pods;
                }
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!("kubelet pod list: {err}; using /var/log/pods meanwhile");
                }
                Err(_) => {}
            }
        }
    })))
}

/// What the kubelet said, by pod uid and by container id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KubeletPods {
    /// pod uid → namespace and name.
    pub(crate) pods: HashMap<String, PodName>,
    /// container id → (runtime from the `containerID` scheme, container name).
    pub(crate) containers: HashMap<String, (Option<Runtime>, String)>,
}

/// The snapshot shared between the fetching task and the resolver.
pub(crate) type SharedKubeletPods = Arc<RwLock<KubeletPods>>;

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
    pub(crate) fn parse(body: &[u8]) -> Result<KubeletPods, KubeletError> {
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
    use std::io::{BufRead, BufReader, Write};

    /// Serves `body` once over plain HTTP; returns the URL and a receiver
    /// of the request's header lines.
    fn serve_once(body: &'static str) -> (String, std::sync::mpsc::Receiver<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/pods", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                headers.push(line.trim_end().to_owned());
            }
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let _ = tx.send(headers);
        });
        (url, rx)
    }

    #[tokio::test]
    async fn fetches_with_the_bearer_token() {
        let (url, headers) =
            serve_once(r#"{"items":[{"metadata":{"name":"p","namespace":"n","uid":"u"}}]}"#);
        let token = std::env::temp_dir().join(format!("eunomia-token-{}", std::process::id()));
        std::fs::write(&token, "s3cret\n").unwrap();
        let config = EnrichConfig {
            kubelet_url: Some(url),
            kubelet_token_file: Some(token.clone()),
            ..EnrichConfig::default()
        };
        let client = KubeletClient::new(&config).unwrap().unwrap();
        let pods = client.fetch().await;
        let _ = std::fs::remove_file(&token);
        assert_eq!(pods.unwrap().pods["u"].name, "p");
        let headers = headers.recv().unwrap();
        assert!(
            headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case("authorization: Bearer s3cret")),
            "{headers:?}"
        );
        assert!(
            KubeletClient::new(&EnrichConfig::default())
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_unreachable_kubelet_is_an_error_not_a_hang() {
        let config = EnrichConfig {
            kubelet_url: Some("http://127.0.0.1:1/pods".into()),
            ..EnrichConfig::default()
        };
        let client = KubeletClient::new(&config).unwrap().unwrap();
        assert!(matches!(
            client.fetch().await,
            Err(KubeletError::Http { .. })
        ));
    }

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
