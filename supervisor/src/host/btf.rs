//! The kernel's BTF (`/sys/kernel/btf/vmlinux`), read through the `btf-rs`
//! crate: the byte offsets of struct members the hot path needs, whether a
//! struct has a member (a tool's `btf_members` requirement) and the ids of
//! kernel functions (fentry targets). aya parses the same file for its own
//! relocations; this is the one place the agent asks it questions.

use btf_rs::{Backend, Btf, Type};

/// Where the running kernel exposes its BTF.
pub(crate) const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Most typedefs and qualifiers followed before a type counts as unresolved.
const MAX_CHAIN: usize = 16;

/// The running kernel's BTF, parsed once.
pub(crate) struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    /// Reads [`VMLINUX_BTF`]; `None` when the kernel has no BTF or the file
    /// cannot be parsed. The file is mapped and read on demand (a few ms
    /// against a second and tens of MB to parse every type up front); a
    /// kernel that cannot map it has it parsed whole.
    pub(crate) fn load() -> Option<KernelBtf> {
        let mapped = Btf::from_file_with_backend(VMLINUX_BTF, Backend::Mmap);
        match mapped.or_else(|_| Btf::from_file(VMLINUX_BTF)) {
            Ok(btf) => Some(KernelBtf { btf }),
            Err(e) => {
                tracing::debug!(error = %e, "no usable kernel BTF");
                None
            }
        }
    }

    /// The BTF id of kernel function `name`.
    pub(crate) fn func_id(&self, name: &str) -> Option<u32> {
        let ids = self.btf.resolve_ids_by_name(name).ok()?;
        ids.into_iter()
            .find(|&id| matches!(self.btf.resolve_type_by_id(id), Ok(Type::Func(_))))
    }

    /// Whether struct (or union) `ty` has a member named `field` (directly,
    /// not inside an anonymous member).
    pub(crate) fn has_member(&self, ty: &str, field: &str) -> bool {
        self.composites(ty).iter().any(|s| {
            s.members
                .iter()
                .any(|m| self.btf.resolve_name(m).is_ok_and(|n| n == field))
        })
    }

    /// Byte offset of `path` (nested member names) from the start of
    /// `struct name`, looking through anonymous struct and union members;
    /// `None` when a member is missing or the offset is not whole bytes.
    pub(crate) fn member_offset(&self, name: &str, path: &[&str]) -> Option<u32> {
        let structs = self.btf.resolve_types_by_name(name).ok()?;
        structs
            .into_iter()
            .filter(|t| matches!(t, Type::Struct(_)))
            .find_map(|mut current| {
                let mut bits = 0;
                for member in path {
                    let (ty, off) = self.find_member(&current, member, 0)?;
                    bits += off;
                    current = ty;
                }
                (bits % 8 == 0).then_some(bits / 8)
            })
    }

    /// The size in bytes of `struct name` (the stride of an array of it).
    pub fn struct_size(&self, name: &str) -> Option<u32> {
        self.btf
            .resolve_types_by_name(name)
            .ok()?
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) => u32::try_from(s.size()).ok(),
                _ => None,
            })
    }

    /// The structs and unions named `ty`.
    fn composites(&self, ty: &str) -> Vec<btf_rs::Struct> {
        self.btf
            .resolve_types_by_name(ty)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| match t {
                Type::Struct(s) | Type::Union(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The (resolved) type and bit offset of `member` in struct or union
    /// `outer`, looking into anonymous members up to a small depth.
    fn find_member(&self, outer: &Type, member: &str, depth: usize) -> Option<(Type, u32)> {
        let (Type::Struct(s) | Type::Union(s)) = outer else {
            return None;
        };
        if depth > MAX_CHAIN {
            return None;
        }
        let named = |m: &btf_rs::Member| self.btf.resolve_name(m).unwrap_or_default();
        if let Some(m) = s.members.iter().find(|m| named(m) == member) {
            return Some((self.member_type(m)?, m.bit_offset()));
        }
        s.members
            .iter()
            .filter(|m| named(m).is_empty())
            .find_map(|m| {
                let inner = self.member_type(m)?;
                let (ty, off) = self.find_member(&inner, member, depth + 1)?;
                Some((ty, m.bit_offset() + off))
            })
    }

    /// A member's type with typedefs and qualifiers skipped.
    fn member_type(&self, m: &btf_rs::Member) -> Option<Type> {
        let mut ty = self.btf.resolve_chained_type(m).ok()?;
        for _ in 0..MAX_CHAIN {
            ty = match &ty {
                Type::Typedef(t) => self.btf.resolve_chained_type(t).ok()?,
                Type::Volatile(t) | Type::Const(t) | Type::Restrict(t) => {
                    self.btf.resolve_chained_type(t).ok()?
                }
                Type::TypeTag(t) => self.btf.resolve_chained_type(t).ok()?,
                _ => return Some(ty),
            };
        }
        Some(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_btf_has_the_members_we_need() {
        let Some(btf) = KernelBtf::load() else {
            eprintln!("SKIP: no {VMLINUX_BTF}");
            return;
        };
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

    #[test]
    fn kernel_btf_has_common_functions_and_structs() {
        let Some(btf) = KernelBtf::load() else {
            eprintln!("SKIP: no kernel BTF");
            return;
        };
        assert!(btf.func_id("vfs_read").is_some());
        assert!(btf.func_id("task_struct").is_none());
        assert!(btf.has_member("task_struct", "pid"));
        assert!(!btf.has_member("task_struct", "no_such_field"));
        // struct upid { int nr; struct pid_namespace *ns; }
        assert_eq!(btf.struct_size("upid"), Some(16));
        assert!(btf.member_offset("pid", &["numbers"]).is_some());
        assert!(btf.struct_size("no_such_struct").is_none());
    }
}
