//! The syscalls the container runtime makes inside the container after the
//! seccomp filter is installed, and which a profile must therefore allow
//! even when the container's start was not watched.
//!
//! runc installs the filter in its `runc init` process, inside the
//! container's cgroup, and then finishes the setup under it: it drops
//! capabilities and switches user (`capget`, `capset`, `prctl`,
//! `setgroups`, `setresuid`, ...), closes inherited descriptors (listing
//! `/proc/self/fd`), opens and writes the exec FIFO that tells the runtime
//! it is ready, changes into the working directory and finally `execve`s
//! the container's process, with the Go runtime's own calls (`futex`,
//! `mmap`, signal handling, thread creation) in between.
//!
//! Inspektor Gadget's `advise seccomp-profile` solves the same problem by
//! recording runc's syscalls in the container's mount namespace from the
//! `prctl(PR_GET_PDEATHSIG)` that precedes the filter's installation, which
//! needs the container's start to be watched. The hot path counts every
//! syscall of the container's cgroup, `runc init`'s included, so when the
//! agent saw the start those syscalls are in the record already; this list
//! covers the other case (the agent or the recording started after the
//! container) and is added to every profile, marked as the runtime's in
//! the rule's comment.

/// What runc (1.0/1.1 and later) calls after installing the filter.
pub(crate) const RUNC_AFTER_FILTER: &[&str] = &[
    // finishing the setup
    "capget",
    "capset",
    "prctl",
    "setgroups",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "chdir",
    "fchdir",
    "getcwd",
    "fstat",
    "fstatfs",
    "statfs",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "fchown",
    "fcntl",
    "openat",
    "getdents64",
    "close",
    "close_range",
    "read",
    "write",
    "access",
    "faccessat",
    "faccessat2",
    "readlinkat",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "kill",
    "getpid",
    "getppid",
    "gettid",
    "execve",
    // the Go runtime of runc
    "futex",
    "nanosleep",
    "clock_gettime",
    "sched_yield",
    "sched_getaffinity",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "brk",
    "clone",
    "clone3",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "tgkill",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "pipe2",
    "exit",
    "exit_group",
    "arch_prctl",
    "set_robust_list",
    "rseq",
];
