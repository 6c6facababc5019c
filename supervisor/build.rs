//! Builds the hot-path BPF programs (`hotpath-ebpf`) for bpfel-unknown-none with
//! aya-build, so `src/hotpath/loader.rs` can embed the object with
//! `include_bytes_aligned!`. With `AYA_BUILD_SKIP=1` nothing is built and an
//! empty object is embedded instead (for `cargo check`/clippy without the BPF
//! toolchain); loading it then fails with a clear error.
use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};

/// File names of the built BPF objects inside `OUT_DIR` (the ebpf crate's bin names).
const OBJECTS: &[&str] = &["hotpath", "profiler"];

fn main() -> anyhow::Result<()> {
    compile_control_proto()?;
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if skip_requested() {
        for object in OBJECTS {
            let out = PathBuf::from(env::var("OUT_DIR")?).join(object);
            fs::write(&out, b"").with_context(|| format!("writing {}", out.display()))?;
        }
        println!("cargo:rustc-cfg=hotpath_skipped");
        println!("cargo:rustc-check-cfg=cfg(hotpath_skipped)");
        return Ok(());
    }
    println!("cargo:rustc-check-cfg=cfg(hotpath_skipped)");
    // the programs share their types and helpers with hotpath-common:
    // aya-build only watches hotpath-ebpf
    println!("cargo:rerun-if-changed=../hotpath-common/src");
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let package = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "hotpath-ebpf")
        .ok_or_else(|| anyhow!("hotpath-ebpf package not found in the workspace"))?;
    let root_dir = package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", package.manifest_path))?;
    // aya-build relays the nested cargo's progress as cargo warnings, which
    // cargo replays on every build; keep only real diagnostics.
    // SAFETY: build scripts are single-threaded.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "hotpath-ebpf",
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context("building hotpath-ebpf (run scripts/setup.sh for bpf-linker and rust-src)")
}

/// Generates the control API's messages and tonic client/server from
/// `proto/control.proto` (needs `protoc`, installed by scripts/setup.sh).
fn compile_control_proto() -> anyhow::Result<()> {
    println!("cargo:rerun-if-changed=proto/control.proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/control.proto"], &["proto"])
        .context("compiling proto/control.proto (is protoc installed? scripts/setup.sh)")
}

fn skip_requested() -> bool {
    env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}
