//! `eunomia advise seccomp`: a seccomp profile from the syscalls a
//! container really made, from the running agent's ledger or from a
//! recording of `--for` (hot path loaded here).

use std::io::Write as _;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::remote;
use crate::{
    BadInput,
    cli::live::SeccompArgs,
    config::Config,
    control::proto,
    live::{Ledger, Recorded},
    seccomp::{Profile, Source},
    standalone,
};

/// Runs `eunomia advise seccomp`.
pub(crate) fn seccomp(args: SeccompArgs) -> anyhow::Result<()> {
    if args.container.trim().is_empty() {
        return Err(BadInput("--container: name a container (name or id)".into()).into());
    }
    if let Some(path) = &args.output {
        check_writable(path)?;
    }
    let (found, source) = remote::block_on(find(&args))?;
    let recorded = pick(&args.container, found)?;
    let profile = Profile::from_recorded(&recorded, source);
    let json = serde_json::to_string_pretty(&profile)? + "\n";
    match &args.output {
        Some(path) => {
            std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {}: {} syscalls allowed for {} {} ({})",
                path.display(),
                profile.allowed_count(),
                recorded.kind.as_str(),
                recorded.name,
                source.describe()
            );
        }
        None => std::io::stdout().lock().write_all(json.as_bytes())?,
    }
    Ok(())
}

/// `-o` is checked before any recording starts.
fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(BadInput(format!(
            "-o {}: {} is not a directory",
            path.display(),
            dir.display()
        ))
        .into());
    }
    if path.is_dir() {
        return Err(BadInput(format!("-o {}: is a directory", path.display())).into());
    }
    Ok(())
}

/// The ledger entries the query names: from the agent, or recorded here.
async fn find(args: &SeccompArgs) -> anyhow::Result<(Vec<Recorded>, Source)> {
    if args.record_for.is_none()
        && let Some(mut client) = remote::connect_if_running(&args.socket).await?
    {
        let r = client
            .workload_syscalls(proto::WorkloadSyscallsRequest {
                container: args.container.clone(),
            })
            .await
            .map_err(remote::answer_error)?;
        let found =
            serde_json::from_str(&r.into_inner().json).context("reading the agent's answer")?;
        return Ok((found, Source::Agent));
    }
    let Some(d) = args.record_for else {
        return Err(BadInput(format!(
            "no agent is running (no control socket at {}): give --for DURATION to record here",
            args.socket.display()
        ))
        .into());
    };
    let config = Config::load(args.config.as_deref()).map_err(|e| BadInput(e.to_string()))?;
    let ledger = Ledger::default();
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(4);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        stop.cancel();
    });
    eprintln!("recording for {} ...", humantime::format_duration(d));
    standalone::run(
        &config.enrich,
        &config.hotpath,
        std::time::Duration::from_secs(1),
        ledger.clone(),
        tx,
        shutdown,
    )
    .await
    .context("recording the container's syscalls")?;
    Ok((ledger.matching(&args.container), Source::Recording(d)))
}

/// Exactly one container must match.
fn pick(query: &str, mut found: Vec<Recorded>) -> anyhow::Result<Recorded> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(BadInput(format!(
            "no syscalls seen for a container named `{query}` (or with an id starting so): \
             is it running, and named so? (`eunomia top` lists the containers)"
        ))
        .into()),
        _ => Err(BadInput(format!(
            "`{query}` names {} containers ({}): give a longer id",
            found.len(),
            found
                .iter()
                .map(|r| r.container_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}
