//! What `eunomia run` checks before it attaches anything, shared with
//! `eunomia config check` so that a file the check calls ok is one `run`
//! accepts: tool names against the manifest, the rules files, the files and
//! directories the configuration names, and the listen addresses.

use std::{
    io::ErrorKind,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use crate::{BadInput, config::Config};

/// What the configuration turns on, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Preflight {
    /// The tools `run` starts.
    pub(crate) tools: Vec<String>,
    /// The manifest files the tools come from.
    pub(crate) manifests: Vec<String>,
    /// Rules loaded (0 when rules are off).
    pub(crate) rules: usize,
    /// The rules files they come from (besides the built-in defaults).
    pub(crate) rules_files: Vec<PathBuf>,
    /// One line per enabled sink.
    pub(crate) sinks: Vec<String>,
    /// Things that are fine for the check but worth saying (an address in
    /// use, perhaps by the agent that runs now).
    pub(crate) notes: Vec<String>,
}

/// Checks `config`; every error is bad input (exit 2) naming what is wrong.
pub(crate) fn check(config: &Config) -> Result<Preflight, BadInput> {
    let manifest = crate::config::load_manifest(&config.tools)?;
    let set = config
        .rules
        .load()
        .map_err(|e| BadInput(format!("the rules have errors:\n{e}")))?;
    check_paths(config)?;
    let mut notes = Vec::new();
    if config.sinks.prometheus.enabled {
        check_listen("sinks.prometheus.listen", config.sinks.prometheus.listen)
            .map_err(BadInput)?
            .into_iter()
            .for_each(|n| notes.push(n));
    }
    Ok(Preflight {
        tools: config.tools.enabled.clone(),
        manifests: manifest.files.clone(),
        rules: set.rules().len(),
        rules_files: set.files.clone(),
        sinks: config.sinks.active(),
        notes,
    })
}

/// Files that must exist and directories that must be usable.
fn check_paths(config: &Config) -> Result<(), BadInput> {
    let o = &config.sinks.otlp;
    if o.enabled {
        for (key, file) in [
            ("sinks.otlp.tls.ca_file", &o.tls.ca_file),
            ("sinks.otlp.tls.cert_file", &o.tls.cert_file),
            ("sinks.otlp.tls.key_file", &o.tls.key_file),
        ] {
            if let Some(f) = file {
                readable(key, f)?;
            }
        }
        if let Some(dir) = &o.buffer.spill_dir {
            creatable_dir("sinks.otlp.buffer.spill_dir", dir)?;
        }
    }
    let j = &config.sinks.jsonl;
    if j.enabled && j.path.as_os_str() != "-" {
        let parent = j.path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent.filter(|d| !d.is_dir()) {
            return Err(BadInput(format!(
                "configuration: sinks.jsonl.path {}: the directory {} does not exist",
                j.path.display(),
                dir.display()
            )));
        }
    }
    let e = &config.enrich;
    if e.enabled {
        for (key, file) in [
            ("enrich.kubelet_token_file", &e.kubelet_token_file),
            ("enrich.kubelet_ca_file", &e.kubelet_ca_file),
        ] {
            if let Some(f) = file {
                readable(key, f)?;
            }
        }
        if let Some(root) = e.cgroup_root.as_ref().filter(|r| !r.is_dir()) {
            return Err(BadInput(format!(
                "configuration: enrich.cgroup_root {}: not a directory",
                root.display()
            )));
        }
    }
    Ok(())
}

fn readable(key: &str, file: &Path) -> Result<(), BadInput> {
    std::fs::File::open(file)
        .map(drop)
        .map_err(|e| BadInput(format!("configuration: {key} {}: {e}", file.display())))
}

/// A directory that exists or whose nearest existing ancestor is a directory.
fn creatable_dir(key: &str, dir: &Path) -> Result<(), BadInput> {
    let existing = dir.ancestors().find(|a| a.exists());
    match existing {
        Some(a) if a.is_dir() => Ok(()),
        Some(a) => Err(BadInput(format!(
            "configuration: {key} {}: {} is not a directory",
            dir.display(),
            a.display()
        ))),
        None => Ok(()),
    }
}

/// Binds `addr` for a moment: an address this host does not have is an
/// error; one in use is a note (the running agent may hold it).
fn check_listen(key: &str, addr: SocketAddr) -> Result<Option<String>, String> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::AddrInUse => Ok(Some(format!(
            "{key} {addr} is in use now (by a running agent?); `run` needs it free"
        ))),
        Err(e) => Err(format!("configuration: {key} {addr}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_str(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn unknown_tool_is_refused() {
        let err = check(&config("[tools]\nenabled = [\"execsnop\"]\n")).unwrap_err();
        assert!(err.0.contains("execsnop"), "{}", err.0);
    }

    #[test]
    fn missing_rules_file_and_paths_are_refused() {
        let err = check(&config("[rules]\nfiles = [\"/nonexistent/rules.toml\"]\n")).unwrap_err();
        assert!(err.0.contains("/nonexistent/rules.toml"), "{}", err.0);
        let err = check(&config(
            "[sinks.jsonl]\npath = \"/nonexistent/dir/out.jsonl\"\n",
        ))
        .unwrap_err();
        assert!(err.0.contains("sinks.jsonl.path"), "{}", err.0);
        let err = check(&config(
            "[sinks.otlp]\nendpoint = \"https://core:4317\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }\n",
        ))
        .unwrap_err();
        assert!(err.0.contains("sinks.otlp.tls.ca_file"), "{}", err.0);
    }

    #[test]
    fn listen_address_this_host_lacks_is_refused() {
        // 192.0.2.0/24 is TEST-NET-1: never assigned here.
        let err = check(&config("[sinks.prometheus]\nlisten = \"192.0.2.1:9464\"\n")).unwrap_err();
        assert!(err.0.contains("sinks.prometheus.listen"), "{}", err.0);
    }

    #[test]
    fn defaults_pass_and_list_what_is_on() {
        let p = check(&Config::default()).unwrap();
        assert_eq!(p.tools, Config::default().tools.enabled);
        assert!(p.rules > 0);
        assert!(p.sinks.is_empty());
    }
}
