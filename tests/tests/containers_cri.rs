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
    IMAGE,
    agent::{AgentRun, args_contain, in_container},
    can_run,
    cri_pod::CriPod,
    runtimes, tcp_sink,
};
use eunomia_tests::kernel_lock;
use serde_json::Value;

const POD: &str = "web-0";
const NAMESPACE: &str = "shop";
const APP: &str = "app";

/// The labels of the app container of the pod.
fn assert_pod(what: &str, v: &Value, pod: &CriPod) {
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
    let mut pod = CriPod::start(rt, NAMESPACE, POD, APP, &script);
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
