//! The command line itself: help for every subcommand, exit codes for bad usage.

use eunomia_tests::eunomia;

/// Every subcommand path the CLI offers.
const SUBCOMMANDS: &[&[&str]] = &[
    &[],
    &["run"],
    &["tools"],
    &["tools", "list"],
    &["status"],
    &["version"],
];

#[test]
fn help_works_for_every_subcommand() {
    for path in SUBCOMMANDS {
        let out = eunomia()
            .args(*path)
            .arg("--help")
            .output()
            .expect("run eunomia");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{path:?} --help failed: {out:?}");
        assert!(stdout.contains("Usage: eunomia"), "{path:?}: {stdout}");
    }
}

#[test]
fn unknown_flag_exits_2() {
    for path in SUBCOMMANDS {
        let out = eunomia()
            .args(*path)
            .arg("--no-such-flag")
            .output()
            .expect("run eunomia");
        assert_eq!(out.status.code(), Some(2), "{path:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--no-such-flag"), "{path:?}: {stderr}");
    }
}

#[test]
fn bad_duration_exits_2_and_says_why() {
    let out = eunomia()
        .args(["run", "--for", "soon"])
        .output()
        .expect("run eunomia");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--for"), "{stderr}");
}

#[test]
fn version_prints_the_package_version() {
    let out = eunomia().arg("version").output().expect("run eunomia");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("eunomia {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
}
