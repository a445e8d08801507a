//! The allocator's settings for the commands that read logs, probe or watch: several threads
//! whose memory is freed as they go, and a peak RSS that matters (a 1 GiB error log must scan
//! in at most 32 MiB). The config engine keeps mimalloc's defaults: its heap parses faster
//! without purging; `config lint` only releases what the model's build freed, once, before
//! the rules. Transparent huge pages are off from the start (`main.rs`).

/// mimalloc's `mi_option_purge_delay`: its position in `mi_option_e` (include/mimalloc.h of
/// the mimalloc that libmimalloc-sys 0.1.49 builds; the test below checks it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps resident memory close to what is in use.
pub fn keep_resident_memory_low() {
    // mimalloc returns freed pages to the OS 1 s after they are freed; a log scan is over by
    // then, so the pages a reader thread freed stayed resident beside the report built after
    // it. At once: the 1 GiB error log's peak RSS went from 41.9 to 31.4 MiB, the same
    // wall-clock (hyperfine, 606 against 608 ms). `config` does not call this: purging at once
    // cost `config lint` 20 ms of system time.
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` writes one slot of mimalloc's option table after checking that the
    // index is in range; it has no other precondition. It runs on the main thread before any
    // other thread is started, so no allocation reads the slot while it is written.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Returns to the OS, now, the memory freed so far (mimalloc would keep it for up to a second).
pub fn release_freed_memory() {
    #[allow(unsafe_code)]
    // SAFETY: `mi_collect` walks mimalloc's own structures under its own locks; it has no
    // precondition on the caller.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// Turns transparent huge pages off for this process, from before `main` (`main.rs`).
/// mimalloc backs each thread's heap with them: 2 MiB of RSS per reader or probe thread (576 MB
/// for 500 probes, 43 MB for a log scan, against 60 MB and 26 MB without), and `config lint`,
/// whose model is built on two threads, peaked at 107 against 77 MiB for no gain in time.
/// `config parse` had them back on (a median 0.5 ms faster), until its slow tail was traced
/// to them: on a host whose memory the page cache has fragmented, a huge page fault waits for
/// the kernel to compact memory (5,000-server config, 40 runs: maxima of 58-140 ms and whole
/// series at a 46.8 ms mean, against 31-33 ms maxima and 19.7-21.4 ms means without).
/// Best effort: a kernel without the prctl keeps its default. Child processes inherit it.
pub fn no_huge_pages() {
    let _ = nix::sys::prctl::set_thp_disable(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index names the purge delay: its default is mimalloc's 1000 ms (src/options.c),
    /// which no neighbouring option has. A new mimalloc that renumbers the options fails here.
    #[test]
    #[allow(unsafe_code)]
    fn purge_delay_is_the_option_set() {
        // SAFETY: reads one slot of the option table; the index is range-checked by mimalloc.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(default, 1000);
        // SAFETY: as above.
        let neighbours = unsafe {
            [
                libmimalloc_sys::mi_option_get(PURGE_DELAY - 1),
                libmimalloc_sys::mi_option_get(PURGE_DELAY + 1),
            ]
        };
        assert!(!neighbours.contains(&1000), "{neighbours:?}");
    }

    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// 64 MiB of small blocks, written and freed through mimalloc (unit tests run on the
    /// system allocator), leave the process once released: without the release, mimalloc keeps
    /// them for its purge delay (a second).
    #[test]
    #[allow(unsafe_code)]
    fn freed_memory_is_released() {
        const BLOCK: usize = 1024;
        let blocks: Vec<*mut u8> = (0..64 * 1024)
            .map(|_| {
                // SAFETY: a plain allocation, checked for null, written within its size.
                unsafe {
                    let p = libmimalloc_sys::mi_malloc(BLOCK).cast::<u8>();
                    assert!(!p.is_null());
                    p.write_bytes(1, BLOCK);
                    p
                }
            })
            .collect();
        let full = resident_kib();
        for p in blocks {
            // SAFETY: each block came from `mi_malloc` above and is freed once.
            unsafe { libmimalloc_sys::mi_free(p.cast()) };
        }
        release_freed_memory();
        let released = resident_kib();
        assert!(
            released + 48 * 1024 <= full,
            "{full} KiB with the blocks, {released} KiB after"
        );
    }
}
