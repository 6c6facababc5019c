//! A real Kubernetes pod without a kubelet: containerd's CRI plugin, driven
//! by a CRI client, runs a pod sandbox (pause) and one app container whose
//! logs go to `<base>/pods/<namespace>_<name>_<uid>/<container>/0.log`.

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{self as cri, runtime_service_client::RuntimeServiceClient as Client};
use tonic::transport::{Channel, Endpoint};

use super::{IMAGE, POD_UID_PREFIX, Runtimes, remove_test_pod_cgroups};

/// A pod with one app container, removed on drop.
pub struct CriPod {
    rt: tokio::runtime::Runtime,
    client: Client<Channel>,
    /// The pod's uid.
    pub uid: String,
    /// The sandbox id.
    pub sandbox: String,
    /// The app container's id.
    pub app: String,
}

impl CriPod {
    /// Starts pod `namespace/name` whose container `container` runs
    /// `/bin/sh -c script`.
    pub fn start(
        runtimes: &Runtimes,
        namespace: &str,
        name: &str,
        container: &str,
        script: &str,
    ) -> CriPod {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = runtimes.cri_socket();
        let mut client = rt.block_on(async {
            let channel = Endpoint::from_static("http://cri.local")
                .connect_with_connector(tower::service_fn(move |_| {
                    let socket = socket.clone();
                    async move {
                        tokio::net::UnixStream::connect(socket)
                            .await
                            .map(TokioIo::new)
                    }
                }))
                .await
                .expect("connect to containerd's CRI");
            Client::new(channel)
        });
        let uid = format!("{POD_UID_PREFIX}0000-4000-9000-{:012x}", std::process::id());
        let sandbox_config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: namespace.into(),
                attempt: 0,
            }),
            log_directory: runtimes
                .base
                .join(format!("pods/{namespace}_{name}_{uid}"))
                .display()
                .to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Node as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (sandbox, app) = rt.block_on(async {
            let sandbox = client
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(sandbox_config.clone()),
                    ..Default::default()
                })
                .await
                .expect("RunPodSandbox")
                .into_inner()
                .pod_sandbox_id;
            let app = client
                .create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: sandbox.clone(),
                    config: Some(cri::ContainerConfig {
                        metadata: Some(cri::ContainerMetadata {
                            name: container.into(),
                            attempt: 0,
                        }),
                        image: Some(cri::ImageSpec {
                            image: IMAGE.into(),
                            ..Default::default()
                        }),
                        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
                        log_path: format!("{container}/0.log"),
                        linux: Some(cri::LinuxContainerConfig::default()),
                        ..Default::default()
                    }),
                    sandbox_config: Some(sandbox_config),
                })
                .await
                .expect("CreateContainer")
                .into_inner()
                .container_id;
            client
                .start_container(cri::StartContainerRequest {
                    container_id: app.clone(),
                })
                .await
                .expect("StartContainer");
            (sandbox, app)
        });
        CriPod {
            rt,
            client,
            uid,
            sandbox,
            app,
        }
    }
    /// `kubectl exec`: CRI ExecSync of `cmd` in the app container.
    pub fn exec(&mut self, cmd: &[&str]) {
        let req = cri::ExecSyncRequest {
            container_id: self.app.clone(),
            cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
            timeout: 10,
        };
        let client = &mut self.client;
        let r = self.rt.block_on(client.exec_sync(req)).expect("ExecSync");
        assert_eq!(r.into_inner().exit_code, 0);
    }
}

impl Drop for CriPod {
    fn drop(&mut self) {
        let id = self.sandbox.clone();
        let client = &mut self.client;
        self.rt.block_on(async {
            let _ = client
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            let _ = client
                .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
                .await;
        });
        remove_test_pod_cgroups();
    }
}
