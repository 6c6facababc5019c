//! A `BPF_F_MMAPABLE` array map mapped into the supervisor's memory: polls
//! read it with plain loads, no bpf() syscall per element.

use std::{io, marker::PhantomData, os::fd::BorrowedFd, ptr::NonNull};

/// `len` elements of `T` shared with the kernel.
pub(crate) struct MmapArray<T> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
    _t: PhantomData<T>,
}

// SAFETY: the mapping is plain shared memory; all access goes through
// volatile reads and writes of Copy data.
unsafe impl<T> Send for MmapArray<T> {}
// SAFETY: as above; `&self` methods only read.
unsafe impl<T> Sync for MmapArray<T> {}

impl<T: Copy> MmapArray<T> {
    /// Maps the array map behind `fd`, which has `len` elements of `T`
    /// (BPF rounds element sizes up to 8 bytes; `T` must already be).
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        assert!(
            size_of::<T>().is_multiple_of(8),
            "element size must be a multiple of 8"
        );
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let bytes = (len * size_of::<T>()).div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks
        // the length against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(ptr.cast()).ok_or_else(io::Error::last_os_error)?,
            len,
            bytes,
            _t: PhantomData,
        })
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A pointer to element `i` (panics when out of range).
    pub(crate) fn ptr(&self, i: usize) -> *mut T {
        assert!(i < self.len, "index {i} out of {}", self.len);
        // SAFETY: in bounds of the mapping.
        unsafe { self.ptr.as_ptr().add(i) }
    }

    /// Element `i`, read once.
    pub(crate) fn get(&self, i: usize) -> T {
        // SAFETY: in bounds; the kernel may write concurrently, which a
        // volatile read of plain integers tolerates (values are torn at
        // worst per u64 never).
        unsafe { std::ptr::read_volatile(self.ptr(i)) }
    }

    /// Overwrites element `i`.
    pub(crate) fn set(&self, i: usize, v: T) {
        // SAFETY: in bounds.
        unsafe { std::ptr::write_volatile(self.ptr(i), v) }
    }
}

impl<T> Drop for MmapArray<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}
