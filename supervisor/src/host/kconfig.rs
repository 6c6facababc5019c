//! The running kernel's build configuration (`CONFIG_*`), from
//! `/proc/config.gz` (decompressed with `flate2`) or
//! `/boot/config-$(uname -r)`.

use std::{collections::HashMap, io::Read as _};

/// Where the kernel exposes its own configuration (`CONFIG_IKCONFIG_PROC`).
const PROC_CONFIG: &str = "/proc/config.gz";
/// Largest configuration read (a real one is about 300 KiB).
const MAX_CONFIG: u64 = 16 << 20;

/// `CONFIG_*` options as name → value (`y`, `m`, a string; `n` for
/// `# CONFIG_X is not set`); empty when neither file is readable.
pub(crate) fn read() -> HashMap<String, String> {
    proc_config()
        .or_else(boot_config)
        .map(|text| parse(&text))
        .unwrap_or_default()
}

/// `/proc/config.gz`, decompressed.
fn proc_config() -> Option<String> {
    let file = std::fs::File::open(PROC_CONFIG).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .take(MAX_CONFIG)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `/boot/config-<release>`.
fn boot_config() -> Option<String> {
    let release = nix::sys::utsname::uname().ok()?;
    std::fs::read_to_string(format!(
        "/boot/config-{}",
        release.release().to_string_lossy()
    ))
    .ok()
}

/// Parses the text of a kernel configuration.
pub(crate) fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            if let Some(name) = l
                .strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
            {
                return Some((name.to_owned(), "n".to_owned()));
            }
            let (k, v) = l.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_unset_and_comments() {
        let c = parse(
            "#\n# General setup\nCONFIG_KPROBES=y\n# CONFIG_FOO is not set\nCONFIG_S=\"x=y\"\n",
        );
        assert_eq!(c.get("CONFIG_KPROBES").map(String::as_str), Some("y"));
        assert_eq!(c.get("CONFIG_FOO").map(String::as_str), Some("n"));
        assert_eq!(c.get("CONFIG_S").map(String::as_str), Some("\"x=y\""));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn this_kernel_config_is_read_when_present() {
        let config = read();
        if std::path::Path::new(PROC_CONFIG).exists() {
            assert!(
                config.contains_key("CONFIG_BPF"),
                "{} options",
                config.len()
            );
        }
    }
}
