//! A real Kubernetes pod without a kubelet: containerd's CRI plugin, driven
//! by a CRI client, runs a pod sandbox (pause) and an app container that
//! execs, opens and connects in a loop; a shell is exec'd into it (CRI
//! ExecSync, what `kubectl exec` does). `eunomia run` must name the pod
//! (name, namespace, uid) and the container in every event of the app, in
//! the hot-path and resource metrics and in the shell alert — with no
//! `/var/log/pods` to help — and never give the pause sandbox the app's name.

mod containers_support;

use std::{thread, time::Duration};

use containers_support::{
    IMAGE, POD_UID_PREFIX, Runtimes,
    agent::{AgentRun, args_contain, in_container},
    can_run, remove_test_pod_cgroups, runtimes, tcp_sink,
};
use eunomia_tests::kernel_lock;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::{self as cri, runtime_service_client::RuntimeServiceClient as Client};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

const POD: &str = "web-0";
const NAMESPACE: &str = "shop";
const APP: &str = "app";

/// A pod with one app container, removed on drop.
struct TestPod {
    rt: tokio::runtime::Runtime,
    client: Client<Channel>,
    uid: String,
    sandbox: String,
    app: String,
}

impl TestPod {
    fn start(runtimes: &Runtimes, script: &str) -> TestPod {
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
        let uid = format!("{POD_UID_PREFIX}0000-4000-8000-{:012x}", std::process::id());
        let sandbox_config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: POD.into(),
                uid: uid.clone(),
                namespace: NAMESPACE.into(),
                attempt: 0,
            }),
            log_directory: runtimes
                .base
                .join(format!("pods/{NAMESPACE}_{POD}_{uid}"))
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
                            name: APP.into(),
                            attempt: 0,
                        }),
                        image: Some(cri::ImageSpec {
                            image: IMAGE.into(),
                            ..Default::default()
                        }),
                        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
                        log_path: format!("{APP}/0.log"),
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
        TestPod {
            rt,
            client,
            uid,
            sandbox,
            app,
        }
    }

    /// `kubectl exec`: CRI ExecSync of `cmd` in the app container.
    fn exec(&mut self, cmd: &[&str]) {
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

impl Drop for TestPod {
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

/// The labels of the app container of the pod.
fn assert_pod(what: &str, v: &Value, pod: &TestPod) {
    assert_eq!(v["container.id"], pod.app.as_str(), "{what}: {v}");
    assert_eq!(v["container.runtime"], "containerd", "{what}: {v}");
    assert_eq!(v["container.name"], APP, "{what}: {v}");
    assert_eq!(v["container.image.name"], IMAGE, "{what}: {v}");
    assert_eq!(v["k8s.pod.name"], POD, "{what}: {v}");
    assert_eq!(v["k8s.namespace.name"], NAMESPACE, "{what}: {v}");
    assert_eq!(v["k8s.pod.uid"], pod.uid.as_str(), "{what}: {v}");
}

#[test]
fn cri_pods_are_named_everywhere_and_the_sandbox_is_not_the_app() {
    let test = "cri_pods_are_named_everywhere_and_the_sandbox_is_not_the_app";
    if !can_run(test) {
        return;
    }
    let _serial = kernel_lock();
    let rt = runtimes();
    let dir = tempfile::Builder::new()
        .prefix("eunomia-cri-")
        .tempdir()
        .unwrap();
    let port = tcp_sink();
    let marker = format!("cri-loop-{}", std::process::id());
    let exec_marker = format!("cri-exec-{}", std::process::id());
    // No /var/log/pods or /var/log/containers: the names come from the
    // task bundles' CRI annotations alone.
    let agent = AgentRun::start(
        dir.path(),
        rt,
        "pod_logs_root = \"\"\ncontainer_logs_root = \"\"\n",
    );
    let script = format!(
        "while true; do /bin/true {marker}; /bin/cat /etc/hostname >/dev/null; /bin/nc 127.0.0.1 {port} </dev/null >/dev/null; /bin/sleep 0.3; done"
    );
    let mut pod = TestPod::start(rt, &script);
    thread::sleep(Duration::from_secs(2));
    let exec_script = format!("/bin/true {exec_marker}; /bin/cat /etc/hostname");
    pod.exec(&["/bin/sh", "-c", &exec_script]);
    let wanted = [
        "eunomia_syscalls_total",
        "eunomia_tcp_connections_total",
        "eunomia_container_cpu_seconds_total",
    ];
    let app_id = pod.app.clone();
    let has_metric = |metrics: &[Value], name: &str| {
        metrics
            .iter()
            .find(|m| m["name"] == name && m["labels"]["container.id"] == app_id.as_str())
            .cloned()
    };
    for round in 0..40 {
        let metrics = agent.metrics();
        let seen = agent
            .events()
            .iter()
            .any(|e| in_container(e) && args_contain(e, &exec_marker));
        if seen && wanted.iter().all(|m| has_metric(&metrics, m).is_some()) {
            break;
        }
        if round % 8 == 7 && !seen {
            pod.exec(&["/bin/sh", "-c", &exec_script]);
        }
        thread::sleep(Duration::from_secs(1));
    }
    let (events, metrics, alerts) = (agent.events(), agent.metrics(), agent.alerts());
    let dump = agent.dump();
    assert_eq!(agent.stop(), 0, "{dump}");

    let app_events: Vec<&Value> = events
        .iter()
        .filter(|e| in_container(e) && (args_contain(e, &marker) || args_contain(e, &exec_marker)))
        .collect();
    assert!(app_events.len() >= 3, "too few app events:\n{dump}");
    for e in &app_events {
        assert_pod("app event", e, &pod);
    }
    assert!(
        app_events
            .iter()
            .any(|e| e["proc.comm"] == "sh" && args_contain(e, &exec_marker)),
        "no event of the exec'd shell:\n{dump}"
    );
    for name in wanted {
        let m =
            has_metric(&metrics, name).unwrap_or_else(|| panic!("no {name} of the app:\n{dump}"));
        assert_pod(name, &m["labels"], &pod);
    }
    // The pause sandbox: in the pod, never named as the app.
    let sandbox_signals: Vec<&Value> = events
        .iter()
        .chain(metrics.iter().map(|m| &m["labels"]))
        .filter(|v| v["container.id"] == pod.sandbox.as_str())
        .collect();
    for v in &sandbox_signals {
        assert_ne!(
            v["container.name"], APP,
            "the sandbox named as the app: {v}"
        );
    }
    // Its events (runc setting it up, the pause process) are the pod's.
    let sandbox_events = events
        .iter()
        .filter(|e| e["container.id"] == pod.sandbox.as_str());
    for e in sandbox_events {
        assert_eq!(e["k8s.pod.name"], POD, "sandbox event: {e}");
        assert_eq!(e["k8s.pod.uid"], pod.uid.as_str(), "sandbox event: {e}");
    }
    let shell_alert = alerts
        .iter()
        .find(|a| {
            a["rule"] == "Shell spawned in a container"
                && a["proc.args"]
                    .as_str()
                    .is_some_and(|s| s.contains(&exec_marker))
        })
        .unwrap_or_else(|| panic!("no shell alert: {alerts:?}\n{dump}"));
    assert_pod("shell alert", shell_alert, &pod);
    let output = shell_alert["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(&format!("of pod {NAMESPACE}/{POD}")) && !output.contains("<NA>"),
        "alert text: {output}"
    );
    drop(pod);
}
