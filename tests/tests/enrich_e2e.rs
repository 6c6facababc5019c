//! End to end through the real sources: a supervised libbpf tool
//! (execsnoop) sees processes start in cgroups named as the runtimes name
//! them, and after the enrichment stage its events carry the container, pod
//! and service of each process.

mod enrich_support;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use enrich_support::{CgroupTree, TempDir, container_id, pod_uid};
use eunomia::{
    context::AgentContext,
    enrich::{EnrichConfig, Enricher, Resolver},
    pipeline::{self, Message},
    tools::{Manifest, RunnerOptions, Supervisor, ToolState, ToolsConfig},
};
use eunomia_tests::{kernel_lock, kernel_tests_can_run};
use model::{
    Workload,
    labels::{
        CONTAINER_ID, CONTAINER_NAME, CONTAINER_RUNTIME, K8S_NAMESPACE, K8S_POD_NAME, K8S_POD_UID,
        SERVICE,
    },
};
use tokio_util::sync::CancellationToken;

/// Runs execsnoop, calls `act` once it is attached, and returns the pids
/// `act` started with the enriched workload of every pid execsnoop reported
/// until those were all seen (or 15 s passed).
fn execsnoop_workloads(
    enricher: &mut Enricher,
    act: impl FnOnce() -> Vec<u32>,
) -> (Vec<u32>, HashMap<u32, Arc<Workload>>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tools = ToolsConfig::default();
        let manifest = Manifest::load(&tools).expect("the built-in manifest");
        let (tx, mut rx) = pipeline::channel(8192);
        let shutdown = CancellationToken::new();
        let ctx = AgentContext::new(tx, shutdown.clone());
        let supervisor = Supervisor::new(manifest, tools.clone(), &ctx);
        drop(ctx);
        let handle = supervisor
            .start("execsnoop", &[], RunnerOptions::from_config(&tools), false)
            .expect("execsnoop starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(handle.stats.state(), ToolState::Running(_)) {
            assert!(
                Instant::now() < deadline,
                "execsnoop state {:?}",
                handle.stats.state()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Attaching takes a moment after the process starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let want = act();
        let mut seen = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while want.iter().any(|p| !seen.contains_key(p)) {
            let Ok(Some(mut msg)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                break;
            };
            enricher.enrich(&mut msg);
            if let Message::Record(r) = msg
                && let (Some(pid), Some(w)) = (r.pid(), r.workload)
            {
                seen.insert(pid, w);
            }
        }
        shutdown.cancel();
        let _ = handle.task.await;
        (want, seen)
    })
}

#[test]
fn tool_events_carry_container_pod_and_service_labels() {
    if !kernel_tests_can_run("tool_events_carry_container_pod_and_service_labels") {
        return;
    }
    let _serial = kernel_lock();
    let logs = TempDir::new("e2e-pods");
    let (uid, docker_id, cri_id) = (pod_uid(), container_id(), container_id());
    std::fs::create_dir_all(logs.0.join(format!("pods/payments_api-6d4b_{uid}/server"))).unwrap();
    // The kubelet's symlink ties the container id to its name (a pod's
    // single log directory alone could be its sandbox's).
    std::fs::create_dir_all(logs.0.join("containers")).unwrap();
    std::fs::write(
        logs.0
            .join(format!("containers/api-6d4b_payments_server-{cri_id}.log")),
        b"",
    )
    .unwrap();
    let mut tree = CgroupTree::v2_only("e2e");
    let docker = tree.create(&format!("system.slice/docker-{docker_id}.scope"));
    let pod = tree.create(&format!("kubepods/besteffort/pod{uid}/{cri_id}"));
    let service = tree.create("system.slice/eunomia-e2e.service");
    let mut enricher = Enricher::new(Resolver::new(&EnrichConfig {
        pod_logs_root: logs.0.join("pods"),
        container_logs_root: logs.0.join("containers"),
        ..EnrichConfig::default()
    }));

    let (pids, seen) = execsnoop_workloads(&mut enricher, || {
        [&docker, &pod, &service]
            .into_iter()
            .map(|path| tree.sleeper(path))
            .collect()
    });
    let get = |pid: u32| {
        seen.get(&pid)
            .unwrap_or_else(|| panic!("no execsnoop event for pid {pid}; saw {:?}", seen.keys()))
    };
    let w = get(pids[0]);
    assert_eq!(w.label(CONTAINER_ID), Some(docker_id.as_str()), "{w:?}");
    assert_eq!(w.label(CONTAINER_RUNTIME), Some("docker"), "{w:?}");
    let w = get(pids[1]);
    assert_eq!(w.label(CONTAINER_ID), Some(cri_id.as_str()), "{w:?}");
    assert_eq!(w.label(K8S_POD_UID), Some(uid.as_str()), "{w:?}");
    assert_eq!(w.label(K8S_NAMESPACE), Some("payments"), "{w:?}");
    assert_eq!(w.label(K8S_POD_NAME), Some("api-6d4b"), "{w:?}");
    assert_eq!(w.label(CONTAINER_NAME), Some("server"), "{w:?}");
    let w = get(pids[2]);
    assert_eq!(w.label(SERVICE), Some("eunomia-e2e"), "{w:?}");
    assert_eq!(w.label(CONTAINER_ID), None, "{w:?}");
}
