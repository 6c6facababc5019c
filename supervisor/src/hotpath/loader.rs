//! Loads the BPF object embedded at build time (see `build.rs`) into the kernel
//! and attaches its programs. Every program stays attached while the
//! [`Hotpath`] lives; dropping it closes the links and programs, so nothing of
//! eunomia's remains loaded after the agent exits.

use aya::{Ebpf, programs::RawTracePoint};
use hotpath_common::SYS_ENTER_PROG;

/// The BPF object built from `hotpath-ebpf` (empty when built with AYA_BUILD_SKIP=1).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/hotpath"));

/// Why the hot path could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum HotpathError {
    /// The binary was built with AYA_BUILD_SKIP=1 and carries no BPF object.
    #[error(
        "this binary was built without its BPF programs (AYA_BUILD_SKIP=1); rebuild without it"
    )]
    NotBuilt,
    /// The kernel refused the object or a program.
    #[error("loading the hot-path BPF object: {0} (eunomia needs root and a kernel with BTF)")]
    Load(#[from] aya::EbpfError),
    /// A program could not be loaded or attached.
    #[error("program {program}: {source}")]
    Program {
        /// The program's name.
        program: &'static str,
        /// What the kernel or aya said.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map the loader expected is missing or has the wrong type.
    #[error("map {map}: {source}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// What aya said.
        #[source]
        source: aya::maps::MapError,
    },
}

/// The loaded hot-path programs and their maps.
pub struct Hotpath {
    ebpf: Ebpf,
}

impl Hotpath {
    /// Loads the embedded object and attaches the syscall counter to
    /// `raw_syscalls:sys_enter`.
    pub fn load() -> Result<Self, HotpathError> {
        if OBJECT.is_empty() {
            return Err(HotpathError::NotBuilt);
        }
        raise_memlock_limit();
        let mut ebpf = Ebpf::load(OBJECT)?;
        attach_raw_tracepoint(&mut ebpf, SYS_ENTER_PROG, "sys_enter")?;
        Ok(Self { ebpf })
    }

    /// The loaded object, for the pollers that read its maps.
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}

/// Loads program `name` and attaches it to the raw tracepoint `tracepoint`.
fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &str,
) -> Result<(), HotpathError> {
    let err = |source| HotpathError::Program {
        program: name,
        source,
    };
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or(err(aya::programs::ProgramError::UnexpectedProgramType))?
        .try_into()
        .map_err(err)?;
    program.load().map_err(err)?;
    program.attach(tracepoint).map_err(err)?;
    tracing::debug!(program = name, tracepoint, "attached");
    Ok(())
}

/// Older kernels charge BPF memory to RLIMIT_MEMLOCK; newer ones (like this
/// one) use memcg accounting. Raising the limit may fail; that is fine.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!("could not raise RLIMIT_MEMLOCK; continuing (memcg accounting)");
    }
}
