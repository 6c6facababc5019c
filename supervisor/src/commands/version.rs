//! `eunomia version`: the agent's version and the facts of the kernel that
//! decide what can run here.

use std::path::Path;

/// Prints the version, the kernel release and whether kernel BTF is present.
pub(crate) fn version() -> anyhow::Result<()> {
    let uname = nix::sys::utsname::uname()?;
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    println!("eunomia {}", env!("CARGO_PKG_VERSION"));
    println!(
        "kernel {} {} (BTF {})",
        uname.release().to_string_lossy(),
        uname.machine().to_string_lossy(),
        if btf { "present" } else { "absent" }
    );
    Ok(())
}
