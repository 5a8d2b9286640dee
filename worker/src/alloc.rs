//! Keeps freed memory in the process instead of handing it back to the kernel.
//!
//! A worker allocates and frees the same large buffers over and over: every
//! gradient sync moves the model through 1 MiB chunks (encoded, received into
//! HTTP/2 read buffers, reduced into new chunks), and every training step
//! allocates its activations and gradients anew. glibc's defaults serve blocks
//! above a dynamic threshold (128 KiB to 32 MiB) with `mmap` and give them back
//! on free, and trim the top of the heap beyond twice that threshold, so each
//! new buffer is fresh pages the kernel must fault in and zero. On loopback
//! that was about a fifth of a rank's CPU time during an all-reduce of 11.2M
//! floats (page faults in `recv`, `clear_page`, memcg charging); the bus
//! bandwidth went from 0.60 to 0.84-0.92 GB/s with 2 ranks once the memory
//! stayed (numbers in bench/allreduce).
//!
//! The cost is resident memory that stays at its peak, which for a process that
//! repeats the same step for hours is what it needs anyway.

/// Tunes glibc's allocator for a long-running worker; call first thing in
/// `main`, before threads start (the arena limit applies to arenas created
/// afterwards). A no-op on other C libraries and platforms.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Blocks up to 64 MiB (a 25 MiB bucket and more) come from the heap,
        // which is trimmed only beyond 1 GiB of free space at its top; one arena
        // per core rather than glibc's eight per core, so freed buffers are reused by
        // whichever thread allocates next.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(cores.max(2)).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets allocator parameters; it is called before
        // other threads exist, as glibc recommends.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
