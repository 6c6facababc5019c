//! `eunomia tools ...`: the supervised libbpf-tools.

/// Lists the manifest's tools and whether each can run here.
pub fn list(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("`eunomia tools list` is not implemented in this build yet")
}
