//! Offsets the BPF programs need but cannot know at compile time: fields of
//! tracepoint records (from tracefs `format` files, which change between
//! kernels) and members of kernel structs (from the kernel's BTF,
//! `/sys/kernel/btf/vmlinux`). Computed at load time and written into the
//! `OFFSETS` global (read-only data) before any program is loaded. The
//! kernel is asked through [`crate::host`].

use hotpath_common::{OFFSET_UNKNOWN, OFFSETS_LEN, Offset};

use crate::host::{btf::KernelBtf, tracefs::tracepoint_field};

/// Every offset of [`Offset`], [`OFFSET_UNKNOWN`] where not found.
pub(crate) fn compute() -> [u32; OFFSETS_LEN as usize] {
    let mut out = [OFFSET_UNKNOWN; OFFSETS_LEN as usize];
    let mut set = |which: Offset, v: Option<u32>| {
        if let Some(v) = v {
            out[which as usize] = v;
        } else {
            tracing::debug!(?which, "offset not found");
        }
    };
    set(
        Offset::ForkChildPid,
        tracepoint_field("sched", "sched_process_fork", "child_pid"),
    );
    set(
        Offset::RecvResetSkaddr,
        tracepoint_field("tcp", "tcp_receive_reset", "skaddr"),
    );
    set(
        Offset::SendResetSkaddr,
        tracepoint_field("tcp", "tcp_send_reset", "skaddr"),
    );
    match KernelBtf::load() {
        Some(btf) => {
            set(
                Offset::TcpBytesAcked,
                btf.member_offset("tcp_sock", &["bytes_acked"]),
            );
            set(
                Offset::TcpBytesReceived,
                btf.member_offset("tcp_sock", &["bytes_received"]),
            );
            set(
                Offset::SockCgroup,
                btf.member_offset("sock", &["sk_cgrp_data", "cgroup"]),
            );
            set(Offset::CgroupKn, btf.member_offset("cgroup", &["kn"]));
            let common = |m| btf.member_offset("sock", &["__sk_common", m]);
            set(Offset::SockFamily, common("skc_family"));
            set(Offset::SockDport, common("skc_dport"));
            set(Offset::SockNum, common("skc_num"));
            set(Offset::SockDaddr, common("skc_daddr"));
            set(Offset::SockDaddrV6, common("skc_v6_daddr"));
            set(Offset::SockRcvSaddr, common("skc_rcv_saddr"));
            set(Offset::SockV6RcvSaddr, common("skc_v6_rcv_saddr"));
            set(
                Offset::TaskFiles,
                btf.member_offset("task_struct", &["files"]),
            );
            set(
                Offset::FilesFdt,
                btf.member_offset("files_struct", &["fdt"]),
            );
            set(Offset::FdtableFd, btf.member_offset("fdtable", &["fd"]));
            set(
                Offset::FdtableMaxFds,
                btf.member_offset("fdtable", &["max_fds"]),
            );
            set(
                Offset::FilePrivate,
                btf.member_offset("file", &["private_data"]),
            );
            set(Offset::SocketSk, btf.member_offset("socket", &["sk"]));
            set(Offset::SocketFile, btf.member_offset("socket", &["file"]));
            set(
                Offset::SockProtocol,
                btf.member_offset("sock", &["sk_protocol"]),
            );
            set(Offset::KernfsId, btf.member_offset("kernfs_node", &["id"]));
            set(
                Offset::TaskCgroups,
                btf.member_offset("task_struct", &["cgroups"]),
            );
            set(Offset::TaskPid, btf.member_offset("task_struct", &["pid"]));
            set(Offset::TaskMm, btf.member_offset("task_struct", &["mm"]));
            set(
                Offset::TaskRealParent,
                btf.member_offset("task_struct", &["real_parent"]),
            );
            set(
                Offset::TaskTgid,
                btf.member_offset("task_struct", &["tgid"]),
            );
            set(
                Offset::MmArgStart,
                btf.member_offset("mm_struct", &["arg_start"]),
            );
            set(
                Offset::MmArgEnd,
                btf.member_offset("mm_struct", &["arg_end"]),
            );
            set(
                Offset::TaskThreadPid,
                btf.member_offset("task_struct", &["thread_pid"]),
            );
            set(Offset::PidLevel, btf.member_offset("pid", &["level"]));
            set(Offset::PidNumbers, btf.member_offset("pid", &["numbers"]));
            set(Offset::UpidNr, btf.member_offset("upid", &["nr"]));
            set(Offset::UpidSize, btf.struct_size("upid"));
            set(
                Offset::CssSetDflCgrp,
                btf.member_offset("css_set", &["dfl_cgrp"]),
            );
        }
        None => tracing::warn!(
            "no usable kernel BTF: TCP bytes and the cgroup of accepted connections are not available"
        ),
    }
    out
}
