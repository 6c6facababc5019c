//! Container resource metrics from the real cgroupfs: a test cgroup that
//! burns CPU and allocates memory shows it, one that exceeds its memory limit
//! shows the OOM kill, and the enrichment stage labels both.

mod enrich_support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use enrich_support::{CgroupTree, container_id, mounts};
use eunomia::{
    cgroups::{
        CgroupStatsPoller, StatsReader,
        poller::{CPU_SECONDS, IO_BYTES, MEMORY_BYTES, MEMORY_LIMIT_BYTES, OOM_EVENTS, PIDS},
    },
    enrich::{EnrichConfig, Enricher, Resolver},
    pipeline::{Sample, SampleValue},
};
use eunomia_tests::kernel_tests_can_run;
use model::labels::{CGROUP_ID, CONTAINER_ID, CONTAINER_RUNTIME, SERVICE};

const MIB: u64 = 1 << 20;

/// Sets the memory limit where this host keeps it: v2 `memory.max`, else
/// the v1 memory controller's `memory.limit_in_bytes`.
fn set_memory_limit(tree: &CgroupTree, path: &str, bytes: u64) {
    let m = mounts();
    let v2 = m.v2.clone().unwrap();
    if tree.v2_dir(path).join("memory.max").exists() {
        tree.write(&v2, path, "memory.max", &bytes.to_string());
    } else {
        let v1 = m.v1_mount("memory").expect("a memory controller");
        tree.write(v1, path, "memory.limit_in_bytes", &bytes.to_string());
    }
}

fn burn(cpu_ms: u64, mem_mib: u64) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgroup-burn"));
    cmd.args([cpu_ms, mem_mib, 600].map(|n| n.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn of<'a>(samples: &'a [Sample], id: u64, metric: &str) -> Vec<&'a Sample> {
    let id = id.to_string();
    samples
        .iter()
        .filter(|s| s.metric == metric && s.label(CGROUP_ID) == Some(id.as_str()))
        .collect()
}

fn gauge(samples: &[Sample], id: u64, metric: &str) -> f64 {
    match of(samples, id, metric).first().map(|s| &s.value) {
        Some(SampleValue::Gauge(v)) => *v,
        other => panic!("{metric} of cgroup {id}: {other:?}"),
    }
}

#[test]
fn cpu_memory_pids_and_oom_of_test_cgroups() {
    if !kernel_tests_can_run("cpu_memory_pids_and_oom_of_test_cgroups") {
        return;
    }
    let mut tree = CgroupTree::with_v1("stats");
    let svc = tree.create("system.slice/eunomia-burn.service");
    let cid = container_id();
    let oom = tree.create(&format!("docker/{cid}"));
    set_memory_limit(&tree, &svc, 512 * MIB);
    set_memory_limit(&tree, &oom, 32 * MIB);
    let (svc_id, oom_id) = (tree.id_of(&svc), tree.id_of(&oom));

    let mut poller = CgroupStatsPoller::new(mounts(), 1 << 20);
    let baseline = poller.poll();
    assert!(
        of(&baseline, svc_id, CPU_SECONDS).is_empty(),
        "the first poll only sets the baseline"
    );

    tree.spawn_in(&svc, &mut burn(1500, 64));
    let killed = tree.spawn_in(&oom, &mut burn(0, 256));
    let reader = StatsReader::new(&mounts());
    wait_until(
        "64 MiB in the service cgroup",
        Duration::from_secs(20),
        || reader.read(&svc).memory_bytes.unwrap_or(0) >= 64 * MIB,
    );
    let status = tree
        .wait(killed, Duration::from_secs(20))
        .expect("OOM kill");
    assert!(!status.success(), "the over-limit process was killed");

    let mut samples = poller.poll();
    let cpu = match of(&samples, svc_id, CPU_SECONDS).first().map(|s| &s.value) {
        Some(SampleValue::DeltaF64(s)) => *s,
        other => panic!("cpu of the service: {other:?}"),
    };
    assert!((1.5..30.0).contains(&cpu), "cpu seconds {cpu}");
    let memory = gauge(&samples, svc_id, MEMORY_BYTES);
    assert!(memory >= (64 * MIB) as f64, "memory {memory}");
    assert_eq!(
        gauge(&samples, svc_id, MEMORY_LIMIT_BYTES),
        (512 * MIB) as f64
    );
    assert!(gauge(&samples, svc_id, PIDS) >= 1.0);
    let ooms: u64 = of(&samples, oom_id, OOM_EVENTS)
        .iter()
        .map(|s| match s.value {
            SampleValue::Delta(n) => n,
            _ => 0,
        })
        .sum();
    assert!(ooms >= 1, "OOM kills {ooms}");
    if mounts().v1_mount("blkio").is_some() || tree.v2_dir(&svc).join("io.stat").exists() {
        assert_eq!(of(&samples, svc_id, IO_BYTES).len(), 2, "read and write");
    }

    // Through the enrichment stage: the service and the container are named.
    let mut enricher = Enricher::new(Resolver::new(&EnrichConfig::default()));
    for s in &mut samples {
        enricher.enrich_sample(s);
    }
    let s = of(&samples, svc_id, MEMORY_BYTES)[0];
    assert_eq!(s.label(SERVICE), Some("eunomia-burn"), "{s:?}");
    let s = of(&samples, oom_id, MEMORY_LIMIT_BYTES)[0];
    assert_eq!(s.label(CONTAINER_ID), Some(cid.as_str()), "{s:?}");
    assert_eq!(s.label(CONTAINER_RUNTIME), Some("docker"), "{s:?}");
    eprintln!(
        "service: {cpu:.2} cpu-s, {:.0} MiB; container: {ooms} OOM kill(s); {} samples in the poll",
        memory / MIB as f64,
        samples.len()
    );
}
