//! Giving freed memory back to the system. glibc's allocator keeps what
//! the agent freed for later (free space at the top of each arena, and
//! whole free pages inside them); after a burst — a large snapshot, a storm
//! of events — the agent's resident memory stays at its high-water mark,
//! which the soak (`scripts/soak.sh`) saw as growth in steps while the live
//! heap stayed flat. Once a minute the agent asks glibc to return free pages
//! (`malloc_trim(0)`, which also releases free pages in the middle of the
//! heaps). Other C libraries: nothing to do.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often free memory is returned.
pub(crate) const TRIM_EVERY: Duration = Duration::from_secs(60);

/// Returns free heap pages to the system every [`TRIM_EVERY`] until
/// `shutdown`.
pub(crate) fn spawn_trimmer(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    trim();
                }
            }
        }
    });
}

/// Returns free heap pages to the system now; whether any were returned.
pub(crate) fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_memory_goes_back_to_the_system() {
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
                .unwrap()
        };
        // Many small blocks (not mmapped one by one), touched, then freed
        // except the last, which pins the top of the heap.
        let blocks: Vec<Vec<u8>> = (0..20_000).map(|_| vec![1u8; 1000]).collect();
        let keep = vec![2u8; 1000];
        let before = rss();
        drop(blocks);
        super::trim();
        let after = rss();
        assert!(
            after + 8_000 < before,
            "RssAnon {before} kB before the trim, {after} kB after"
        );
        drop(keep);
    }
}
