//! Sets `bpf_target_arch` (the host's, or `AYA_BPF_TARGET_ARCH` when
//! cross-building), by which `src/arch.rs` picks the `pt_regs` layout.

fn main() -> aya_build::Result<()> {
    aya_build::emit_bpf_target_arch_cfg()
}
