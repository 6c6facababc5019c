//! `eunomia map`: the running agent's service map as an SVG (or JSON).

use std::io::Write as _;

use anyhow::Context as _;

use super::remote;
use crate::{
    cli::MapArgs,
    control::proto,
    traces::{stage::MapState, svg},
};

/// Runs `eunomia map`.
pub(crate) fn map(args: MapArgs) -> anyhow::Result<()> {
    let json = remote::block_on(fetch(&args))?;
    let out = if args.json {
        json + "\n"
    } else {
        let state: MapState =
            serde_json::from_str(&json).context("reading the agent's service map")?;
        let title = format!(
            "Service map of {} ({} edges)",
            crate::host::hostname(),
            state.map.edges.len()
        );
        svg::render(&state.map, &title)
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout().lock().write_all(out.as_bytes())?,
    }
    Ok(())
}

async fn fetch(args: &MapArgs) -> anyhow::Result<String> {
    let mut client = remote::connect(&args.socket).await?;
    let answer = client
        .service_map(proto::ServiceMapRequest {})
        .await
        .map_err(remote::answer_error)?;
    Ok(answer.into_inner().json)
}
