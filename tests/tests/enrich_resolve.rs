//! Container, pod and service resolution against the real cgroupfs: cgroups
//! named as Docker, containerd, CRI-O, Podman and systemd name them, a test
//! process moved into each, and the resolver asked by pid and by cgroup id.

mod enrich_support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use enrich_support::{CgroupTree, TempDir, container_id, pod_uid};
use eunomia::enrich::{EnrichConfig, Resolver};
use eunomia_tests::kernel_tests_can_run;
use model::{
    QosClass, Runtime, Workload,
    labels::{
        CONTAINER_ID, CONTAINER_NAME, CONTAINER_RUNTIME, K8S_NAMESPACE, K8S_POD_NAME, K8S_POD_UID,
        SERVICE,
    },
};

/// A config whose name sources are off unless a test sets them.
fn config() -> EnrichConfig {
    EnrichConfig {
        pod_logs_root: "".into(),
        container_logs_root: "".into(),
        docker_root: "".into(),
        refresh: Duration::ZERO,
        ..EnrichConfig::default()
    }
}

/// What a case expects.
struct Case {
    what: &'static str,
    rel: String,
    runtime: Option<Runtime>,
    id: Option<String>,
    pod: Option<(String, QosClass)>,
    service: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut container =
        |what, rel: &dyn Fn(&str, &str) -> String, runtime, qos: Option<QosClass>| {
            let id = container_id();
            let uid = pod_uid();
            cases.push(Case {
                what,
                rel: rel(&id, &uid),
                runtime: Some(runtime),
                id: Some(id),
                pod: qos.map(|q| (uid, q)),
                service: None,
            });
        };
    container(
        "docker cgroupfs",
        &|id, _| format!("docker/{id}"),
        Runtime::Docker,
        None,
    );
    container(
        "docker systemd",
        &|id, _| format!("system.slice/docker-{id}.scope"),
        Runtime::Docker,
        None,
    );
    container(
        "containerd burstable (systemd)",
        &|id, uid| {
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
                uid.replace('-', "_")
            )
        },
        Runtime::Containerd,
        Some(QosClass::Burstable),
    );
    container(
        "containerd besteffort (systemd)",
        &|id, uid| {
            format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
                uid.replace('-', "_")
            )
        },
        Runtime::Containerd,
        Some(QosClass::BestEffort),
    );
    container(
        "containerd guaranteed (systemd)",
        &|id, uid| {
            format!(
                "kubepods.slice/kubepods-pod{}.slice/cri-containerd-{id}.scope",
                uid.replace('-', "_")
            )
        },
        Runtime::Containerd,
        Some(QosClass::Guaranteed),
    );
    container(
        "containerd burstable (cgroupfs)",
        &|id, uid| format!("kubepods/burstable/pod{uid}/{id}"),
        Runtime::Containerd,
        Some(QosClass::Burstable),
    );
    container(
        "containerd besteffort (cgroupfs)",
        &|id, uid| format!("kubepods/besteffort/pod{uid}/{id}"),
        Runtime::Containerd,
        Some(QosClass::BestEffort),
    );
    container(
        "containerd guaranteed (cgroupfs)",
        &|id, uid| format!("kubepods/pod{uid}/{id}"),
        Runtime::Containerd,
        Some(QosClass::Guaranteed),
    );
    container(
        "cri-o",
        &|id, uid| {
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/crio-{id}.scope",
                uid.replace('-', "_")
            )
        },
        Runtime::CriO,
        Some(QosClass::Burstable),
    );
    container(
        "podman",
        &|id, _| format!("machine.slice/libpod-{id}.scope"),
        Runtime::Podman,
        None,
    );
    cases.push(Case {
        what: "systemd service",
        rel: "system.slice/eunomia-test-web.service".into(),
        runtime: None,
        id: None,
        pod: None,
        service: Some("eunomia-test-web"),
    });
    cases
}

fn check(case: &Case, w: &Workload, how: &str) {
    let ctx = format!("{} ({how}): {w:?}", case.what);
    assert!(w.is_known(), "{ctx}");
    assert_eq!(
        w.container.as_ref().map(|c| c.runtime),
        case.runtime,
        "{ctx}"
    );
    assert_eq!(w.label(CONTAINER_ID), case.id.as_deref(), "{ctx}");
    assert_eq!(
        w.label(CONTAINER_RUNTIME),
        case.runtime.map(|r| r.as_str()),
        "{ctx}"
    );
    assert_eq!(
        w.pod.as_ref().map(|p| (p.uid.clone(), p.qos)),
        case.pod,
        "{ctx}"
    );
    assert_eq!(w.label(SERVICE), case.service, "{ctx}");
}

#[test]
fn runtime_cgroups_resolve_by_pid_and_by_id() {
    if !kernel_tests_can_run("runtime_cgroups_resolve_by_pid_and_by_id") {
        return;
    }
    let mut tree = CgroupTree::v2_only("resolve");
    let mut resolver = Resolver::new(&EnrichConfig {
        refresh: Duration::from_secs(60),
        ..config()
    });
    for case in cases() {
        let path = tree.create(&case.rel);
        let pid = tree.sleeper(&path);
        let by_pid = resolver.by_pid(pid);
        check(&case, &by_pid, "by pid");
        assert_eq!(by_pid.cgroup_path.as_deref(), Some(path.as_str()));
        let id = tree.id_of(&path);
        assert_eq!(by_pid.cgroup_id, Some(id), "{}", case.what);
        // A fresh resolver asks cgroupfs for the id rather than the cache.
        let by_id = Resolver::new(&config()).by_cgroup_id(id);
        check(&case, &by_id, "by id");
        // The resolver hands out one shared value per cgroup.
        assert!(Arc::ptr_eq(&by_pid, &resolver.by_cgroup_id(id)));
    }
}

#[test]
fn pod_names_come_from_var_log_pods_and_vanish_cleanly() {
    if !kernel_tests_can_run("pod_names_come_from_var_log_pods_and_vanish_cleanly") {
        return;
    }
    let logs = TempDir::new("var-log-pods");
    let (uid, id) = (pod_uid(), container_id());
    let pod_dir = logs.0.join(format!("pods/shop_web-5f7c9_{uid}"));
    std::fs::create_dir_all(pod_dir.join("nginx")).unwrap();
    let containers = logs.0.join("containers");
    std::fs::create_dir_all(&containers).unwrap();
    std::fs::write(
        containers.join(format!("web-5f7c9_shop_nginx-{id}.log")),
        b"",
    )
    .unwrap();
    let config = EnrichConfig {
        pod_logs_root: logs.0.join("pods"),
        container_logs_root: containers.clone(),
        ..config()
    };
    let mut tree = CgroupTree::v2_only("pods");
    let rel = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
        uid.replace('-', "_")
    );
    let path = tree.create(&rel);
    let pid = tree.sleeper(&path);
    let mut resolver = Resolver::new(&config);
    let w = resolver.by_pid(pid);
    assert_eq!(w.label(K8S_POD_UID), Some(uid.as_str()), "{w:?}");
    assert_eq!(w.label(K8S_NAMESPACE), Some("shop"), "{w:?}");
    assert_eq!(w.label(K8S_POD_NAME), Some("web-5f7c9"), "{w:?}");
    assert_eq!(w.label(CONTAINER_NAME), Some("nginx"), "{w:?}");
    let id_before = tree.id_of(&path);

    // The pod goes away: its log directory, its process, its cgroup.
    std::fs::remove_dir_all(&pod_dir).unwrap();
    std::fs::remove_dir_all(&containers).unwrap();
    tree.kill(pid);
    tree.remove(&rel);
    let gone = Resolver::new(&config).by_cgroup_id(id_before);
    assert!(!gone.is_known(), "{gone:?}");
    assert_eq!(gone.labels().count(), 0);
    // A new container of the same (now unlisted) pod: uid, no names.
    let again = tree.create(&rel);
    let w = Resolver::new(&config).by_cgroup_id(tree.id_of(&again));
    assert_eq!(w.label(K8S_POD_UID), Some(uid.as_str()), "{w:?}");
    assert_eq!(w.label(K8S_POD_NAME), None, "{w:?}");
    assert_eq!(w.label(K8S_NAMESPACE), None, "{w:?}");
}

#[test]
fn an_exited_process_resolves_through_the_kernel_lookup() {
    if !kernel_tests_can_run("an_exited_process_resolves_through_the_kernel_lookup") {
        return;
    }
    let mut tree = CgroupTree::v2_only("exited");
    let id = container_id();
    let path = tree.create(&format!("docker/{id}"));
    let pid = tree.spawn_in(&path, &mut std::process::Command::new("true"));
    tree.wait(pid, Duration::from_secs(5)).expect("true exits");
    // /proc knows nothing any more.
    let mut plain = Resolver::new(&config());
    assert!(!plain.by_pid(pid).is_known());
    // The kernel map does. (Stand-in for the hot path's pid → cgroup map
    // until it lands: the id the map would hold.)
    let cgroup = tree.id_of(&path);
    let mut resolver = Resolver::new(&config());
    resolver.set_pid_lookup(Arc::new(move |p: u32| (p == pid).then_some(cgroup)));
    let w = resolver.by_pid(pid);
    assert_eq!(w.label(CONTAINER_ID), Some(id.as_str()), "{w:?}");
    assert_eq!(resolver.stats().pid_from_kernel, 1);
}

#[test]
fn caches_stay_bounded_over_10000_cgroups() {
    if !kernel_tests_can_run("caches_stay_bounded_over_10000_cgroups") {
        return;
    }
    const N: usize = 10_000;
    const CAP: usize = 512;
    let config = EnrichConfig {
        cache_capacity: CAP,
        pid_cache_capacity: CAP,
        ..config()
    };
    let mut resolver = Resolver::new(&config);
    let mut tree = CgroupTree::v2_only("bounded");
    let mut ids = Vec::with_capacity(N);
    let mut resolve_time = Duration::ZERO;
    for i in 0..N {
        let path = tree.create(&format!("docker/{}", container_id()));
        let id = tree.id_of(&path);
        let started = Instant::now();
        let w = resolver.by_cgroup_id(id);
        resolve_time += started.elapsed();
        assert!(w.container.is_some(), "cgroup {i}: {w:?}");
        ids.push((path, id));
    }
    let started = Instant::now();
    for (_, id) in ids.iter().rev().take(CAP) {
        assert!(resolver.by_cgroup_id(*id).container.is_some());
    }
    let hit_time = started.elapsed();
    let sizes = resolver.cache_sizes();
    assert!(sizes.by_id <= CAP, "{sizes:?}");
    let base = tree.base();
    for (path, _) in &ids {
        tree.remove(path.strip_prefix(&base).unwrap());
    }
    // Gone cgroups resolve to unknown, and the cache stays bounded.
    for (_, id) in ids.iter().take(CAP * 2) {
        let w = resolver.by_cgroup_id(*id);
        let _ = w.is_known();
    }
    let evicted = ids[0].1;
    assert!(!resolver.by_cgroup_id(evicted).is_known());
    let sizes = resolver.cache_sizes();
    assert!(sizes.by_id <= CAP && sizes.by_path <= CAP, "{sizes:?}");
    eprintln!(
        "{N} cgroups: {:?} per miss (cgroupfs), {:?} per hit; cache {sizes:?}; stats {:?}",
        resolve_time / N as u32,
        hit_time / CAP as u32,
        resolver.stats()
    );
}
