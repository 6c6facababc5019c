//! Finds the log files of the containers on this host in the runtimes' own
//! directories (the roots of `[enrich]`), each with the workload it belongs
//! to, named as enrichment names it (`container.id`, `container.name`,
//! `container.image.name`, `k8s.pod.*`, from the same runtime files):
//!
//! - Docker: `<docker_root>/<id>/<id>-json.log`;
//! - podman (`--log-driver k8s-file`): `<podman_root>/overlay-containers/<id>/userdata/ctr.log`;
//! - CRI: `<pod_logs_root>/<namespace>_<pod>_<uid>/<container>/<restart>.log`,
//!   the container id from containerd's task bundles.
//!
//! What the directories hold is untrusted: names that do not fit are
//! skipped, never followed elsewhere.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use parsers::logs::LogFormat;

use model::{Container, Pod, QosClass, Runtime, Workload};

use crate::host::containers::{ContainerFacts, RuntimeFiles, runtimes::is_plain_name};

/// One container log file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogFile {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its format.
    pub(crate) format: LogFormat,
    /// Whose it is.
    pub(crate) workload: Arc<Workload>,
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub(crate) struct Roots {
    /// Docker's container directory (`None`: not read).
    pub(crate) docker: Option<PathBuf>,
    /// Podman's storage root.
    pub(crate) podman: Option<PathBuf>,
    /// The kubelet's pod log directory.
    pub(crate) pods: Option<PathBuf>,
    /// Where the runtimes' names come from.
    pub(crate) files: RuntimeFiles,
}

/// Every log file found, at most `max`.
pub(crate) fn discover(roots: &Roots, max: usize) -> Vec<LogFile> {
    let mut out = Vec::new();
    if let Some(root) = &roots.docker {
        docker(root, &roots.files, &mut out);
    }
    if let Some(root) = &roots.podman {
        podman(root, &roots.files, &mut out);
    }
    if let Some(root) = &roots.pods {
        cri(root, &roots.files, &mut out);
    }
    out.truncate(max);
    out
}

fn subdirs(dir: &Path) -> impl Iterator<Item = (String, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
}

fn container(id: &str, runtime: Runtime, facts: Option<ContainerFacts>) -> Container {
    let facts = facts.unwrap_or_default();
    Container {
        id: id.to_owned(),
        runtime,
        name: facts.name,
        image: facts.image,
        namespace: None,
        sandbox: false,
    }
}

fn docker(root: &Path, files: &RuntimeFiles, out: &mut Vec<LogFile>) {
    for (id, dir) in subdirs(root) {
        let path = dir.join(format!("{id}-json.log"));
        if !is_plain_name(&id) || !path.is_file() {
            continue;
        }
        let workload = Workload {
            container: Some(container(&id, Runtime::Docker, files.docker(&id))),
            ..Workload::default()
        };
        out.push(LogFile {
            path,
            format: LogFormat::DockerJson,
            workload: Arc::new(workload),
        });
    }
}

fn podman(root: &Path, files: &RuntimeFiles, out: &mut Vec<LogFile>) {
    for (id, dir) in subdirs(&root.join("overlay-containers")) {
        let path = dir.join("userdata/ctr.log");
        if !is_plain_name(&id) || !path.is_file() {
            continue;
        }
        let workload = Workload {
            container: Some(container(&id, Runtime::Podman, files.podman(&id))),
            ..Workload::default()
        };
        out.push(LogFile {
            path,
            format: LogFormat::K8sFile,
            workload: Arc::new(workload),
        });
    }
}

fn cri(root: &Path, files: &RuntimeFiles, out: &mut Vec<LogFile>) {
    for (pod_dir, dir) in subdirs(root) {
        let mut parts = pod_dir.splitn(3, '_');
        let (Some(ns), Some(pod), Some(uid)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let pod = Pod {
            uid: uid.to_owned(),
            qos: QosClass::BestEffort,
            namespace: Some(ns.to_owned()),
            name: Some(pod.to_owned()),
        };
        for (name, cdir) in subdirs(&dir) {
            let found = files.cri_container(uid, &name);
            let container = found.map(|(id, facts)| Container {
                name: Some(name.clone()),
                ..container(&id, Runtime::Containerd, Some(facts))
            });
            let workload = Arc::new(Workload {
                container,
                pod: Some(pod.clone()),
                ..Workload::default()
            });
            for path in restart_logs(&cdir) {
                out.push(LogFile {
                    path,
                    format: LogFormat::Cri,
                    workload: workload.clone(),
                });
            }
        }
    }
}

/// `<digits>.log` files of a container directory (one per restart).
fn restart_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_suffix(".log")?.parse().ok()?;
            e.file_type().ok()?.is_file().then(|| (n, e.path()))
        })
        .collect();
    logs.sort();
    logs.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn finds_docker_podman_and_cri_logs_with_their_workloads() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        write(&base.join("docker/abc/abc-json.log"), "");
        write(
            &base.join("docker/abc/config.v2.json"),
            r#"{"Name":"/web","Config":{"Image":"img:1"}}"#,
        );
        write(&base.join("docker/nolog/config.v2.json"), "{}");
        write(
            &base.join("podman/overlay-containers/p1/userdata/ctr.log"),
            "",
        );
        write(&base.join("pods/shop_web-0_u1/app/0.log"), "");
        write(&base.join("pods/shop_web-0_u1/app/1.log"), "");
        write(
            &base.join("pods/shop_web-0_u1/app/0.log.20240101-000000"),
            "",
        );
        write(&base.join("pods/badname/app/0.log"), "");
        write(
            &base.join("containerd/io.containerd.runtime.v2.task/k8s.io/cid/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-uid":"u1","io.kubernetes.cri.image-name":"img:2"}}"#,
        );
        let roots = Roots {
            docker: Some(base.join("docker")),
            podman: Some(base.join("podman")),
            pods: Some(base.join("pods")),
            files: RuntimeFiles {
                docker_root: Some(base.join("docker")),
                podman_root: Some(base.join("podman")),
                containerd_state: Some(base.join("containerd")),
            },
        };
        let found = discover(&roots, 100);
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.strip_prefix(base).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "docker/abc/abc-json.log",
                "podman/overlay-containers/p1/userdata/ctr.log",
                "pods/shop_web-0_u1/app/0.log",
                "pods/shop_web-0_u1/app/1.log"
            ]
        );
        let labels = |i: usize| -> Vec<(&str, String)> {
            found[i]
                .workload
                .labels()
                .map(|(k, v)| (k, v.to_owned()))
                .collect()
        };
        assert!(labels(0).contains(&("container.name", "web".into())));
        assert!(labels(0).contains(&("container.image.name", "img:1".into())));
        assert_eq!(found[1].format, LogFormat::K8sFile);
        let cri = labels(2);
        for want in [
            ("container.id", "cid"),
            ("container.name", "app"),
            ("container.image.name", "img:2"),
            ("k8s.pod.name", "web-0"),
            ("k8s.namespace.name", "shop"),
            ("k8s.pod.uid", "u1"),
        ] {
            assert!(
                cri.contains(&(want.0, want.1.into())),
                "{want:?} in {cri:?}"
            );
        }
        assert_eq!(discover(&roots, 1).len(), 1);
    }
}
