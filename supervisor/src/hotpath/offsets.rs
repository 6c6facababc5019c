//! Offsets the BPF programs need but cannot know at compile time: fields of
//! tracepoint records (from tracefs `format` files, which change between
//! kernels) and members of kernel structs (from the kernel's BTF,
//! `/sys/kernel/btf/vmlinux`). Computed at load time and written into the
//! `OFFSETS` global (read-only data) before any program is loaded.

use std::collections::HashMap;

use hotpath_common::{OFFSET_UNKNOWN, OFFSETS_LEN, Offset};

/// tracefs mount points, in the order tried.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The byte offset of `field` in the records of tracepoint `category/name`.
pub fn tracepoint_field(category: &str, name: &str, field: &str) -> Option<u32> {
    let text = TRACEFS.iter().find_map(|root| {
        std::fs::read_to_string(format!("{root}/events/{category}/{name}/format")).ok()
    })?;
    parse_format_field(&text, field)
}

/// Finds `field:<type> <field>[...];\toffset:N;` in a tracepoint format.
fn parse_format_field(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let last = decl.split_whitespace().last()?;
        let ident = last.split('[').next()?;
        if ident != field {
            return None;
        }
        rest.trim()
            .strip_prefix("offset:")?
            .split(';')
            .next()?
            .trim()
            .parse()
            .ok()
    })
}

/// Every offset of [`Offset`], [`OFFSET_UNKNOWN`] where not found.
pub fn compute() -> [u32; OFFSETS_LEN as usize] {
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
    match std::fs::read("/sys/kernel/btf/vmlinux")
        .ok()
        .and_then(|b| Btf::parse(&b))
    {
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

/// Just enough of a BTF parser to find struct member offsets.
pub struct Btf {
    /// Type id → (kind, name, members as (name, type id, bit offset)).
    types: Vec<BtfType>,
    /// Struct name → type ids.
    structs: HashMap<String, Vec<u32>>,
}

struct BtfType {
    kind: u32,
    /// For modifiers/typedefs: the type referred to.
    referred: u32,
    members: Vec<(String, u32, u32)>,
}

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

impl Btf {
    /// Parses a raw BTF blob (little endian).
    pub fn parse(data: &[u8]) -> Option<Btf> {
        let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
        if u16_at(0)? != 0xeb9f {
            return None;
        }
        let hdr_len = u32_at(4)? as usize;
        let type_off = hdr_len + u32_at(8)? as usize;
        let type_len = u32_at(12)? as usize;
        let str_off = hdr_len + u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let strings = data.get(str_off..str_off + str_len)?;
        let name = |off: u32| -> String {
            let s = strings.get(off as usize..).unwrap_or_default();
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        };
        let mut types = vec![BtfType {
            kind: 0,
            referred: 0,
            members: Vec::new(),
        }];
        let mut structs: HashMap<String, Vec<u32>> = HashMap::new();
        let mut o = type_off;
        let end = type_off + type_len;
        while o + 12 <= end {
            let name_off = u32_at(o)?;
            let info = u32_at(o + 4)?;
            let size_or_type = u32_at(o + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kind_flag = info >> 31 == 1;
            o += 12;
            let mut members = Vec::new();
            let extra = match kind {
                1 => 4,  // INT
                3 => 12, // ARRAY
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = o + i * 12;
                        let off = u32_at(m + 8)?;
                        let bits = if kind_flag { off & 0xff_ffff } else { off };
                        members.push((name(u32_at(m)?), u32_at(m + 4)?, bits));
                    }
                    vlen * 12
                }
                6 => vlen * 8,   // ENUM
                13 => vlen * 8,  // FUNC_PROTO
                14 => 4,         // VAR
                15 => vlen * 12, // DATASEC
                17 => 4,         // DECL_TAG
                19 => vlen * 12, // ENUM64
                _ => 0,
            };
            o += extra;
            let id = types.len() as u32;
            if kind == KIND_STRUCT {
                structs.entry(name(name_off)).or_default().push(id);
            }
            types.push(BtfType {
                kind,
                referred: size_or_type,
                members,
            });
        }
        Some(Btf { types, structs })
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.referred
                }
                _ => break,
            }
        }
        id
    }

    /// Byte offset of `path` (nested member names) from the start of
    /// `struct name`, looking through anonymous struct/union members.
    pub fn member_offset(&self, name: &str, path: &[&str]) -> Option<u32> {
        let ids = self.structs.get(name)?;
        ids.iter().find_map(|&id| {
            let mut id = id;
            let mut bits = 0;
            for member in path {
                let (ty, off) = self.find_member(id, member)?;
                bits += off;
                id = self.resolve(ty);
            }
            (bits % 8 == 0).then_some(bits / 8)
        })
    }

    /// (type id, bit offset) of `member` in struct/union `id`.
    fn find_member(&self, id: u32, member: &str) -> Option<(u32, u32)> {
        let t = self.types.get(id as usize)?;
        if !matches!(t.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        for (name, ty, off) in &t.members {
            if name == member {
                return Some((*ty, *off));
            }
        }
        for (name, ty, off) in &t.members {
            if name.is_empty()
                && let Some((ty, inner)) = self.find_member(self.resolve(*ty), member)
            {
                return Some((ty, off + inner));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_fields() {
        let f = "name: x\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
                 \tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
                 \tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;\n";
        assert_eq!(parse_format_field(f, "skaddr"), Some(8));
        assert_eq!(parse_format_field(f, "daddr_v6"), Some(56));
        assert_eq!(parse_format_field(f, "daddr"), None);
    }

    #[test]
    fn kernel_btf_has_the_members_we_need() {
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            eprintln!("SKIP: no /sys/kernel/btf/vmlinux");
            return;
        };
        let btf = Btf::parse(&data).expect("parse vmlinux BTF");
        let acked = btf.member_offset("tcp_sock", &["bytes_acked"]).unwrap();
        let received = btf.member_offset("tcp_sock", &["bytes_received"]).unwrap();
        assert!(acked > 1000 && received > 1000, "{acked} {received}");
        assert!(
            btf.member_offset("sock", &["sk_cgrp_data", "cgroup"])
                .is_some()
        );
        assert!(btf.member_offset("kernfs_node", &["id"]).is_some());
        // inside anonymous unions of sock_common
        assert_eq!(
            btf.member_offset("sock", &["__sk_common", "skc_daddr"]),
            Some(0)
        );
        assert!(
            btf.member_offset("sock", &["__sk_common", "skc_dport"])
                .is_some()
        );
        assert!(btf.member_offset("sock", &["sk_protocol"]).is_some());
        assert!(btf.member_offset("tcp_sock", &["no_such_member"]).is_none());
    }
}
