//! The pid → cgroup map: a process that has exited still resolves to the
//! cgroup it ran in (for enrichment of events that tools report late), via
//! the loader's `cgroup_of_pid` and the cloneable handle.

mod hotpath_support;

use eunomia::hotpath::{Hotpath, HotpathConfig};
use eunomia_tests::{kernel_lock, kernel_tests_can_run};
use hotpath_support::TestCgroup;

#[test]
fn exited_process_resolves_to_its_cgroup() {
    if !kernel_tests_can_run("exited_process_resolves_to_its_cgroup") {
        return;
    }
    let _serial = kernel_lock();
    let config = HotpathConfig {
        syscalls: eunomia::hotpath::SyscallCounting::Off,
        tcp: false,
        execs: false,
        mounts: false,
        ..HotpathConfig::default()
    };
    let hotpath = Hotpath::load(&config).expect("load the pid probe");
    let handle = hotpath.pid_cgroups().expect("pid probe attached");
    let cgroup = TestCgroup::create("pids");
    let child = cgroup
        .command(env!("CARGO_BIN_EXE_syscall-loop"), &["10"])
        .output()
        .expect("run syscall-loop");
    assert!(child.status.success());
    // syscall-loop prints its pid; it has exited and been reaped
    let pid: u32 = String::from_utf8_lossy(&child.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still exists"
    );
    assert_eq!(hotpath.cgroup_of_pid(pid), Some(cgroup.id));
    // the handle works from another thread
    let from_thread = std::thread::spawn(move || handle.cgroup_of_pid(pid))
        .join()
        .unwrap();
    assert_eq!(from_thread, Some(cgroup.id));
    // a live process without an entry (started before the probe) falls back to /proc
    let me = std::process::id();
    assert!(hotpath.cgroup_of_pid(me).is_some());
}
