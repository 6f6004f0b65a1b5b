//! Gives freed memory back to the system after a burst (sockets that hoarded frames closing).
//!
//! glibc keeps what the program freed in its arenas, scattered between live allocations, so
//! after 100 non-reading sockets closed the server stayed at its peak (193 MB against 21 MB
//! before: measured in `tests/backpressure.rs`); `malloc_trim(0)` returns those pages (25 MB).
//! It walks and locks every arena, so it runs on its own thread, once a burst has settled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// A trim waits until no new request came for this long (the frees of a burst come in
/// waves: sockets closing, then the replays still queued for them being dropped).
const SETTLE: Duration = Duration::from_millis(500);

/// ...but never longer than this after the first request, so a steady trickle still trims.
const AT_MOST: Duration = Duration::from_secs(10);

static PENDING: AtomicBool = AtomicBool::new(false);
static LOCK: Mutex<()> = Mutex::new(());
static WAKE: Condvar = Condvar::new();
static STARTED: Once = Once::new();

/// Asks for a trim once the current burst of frees has settled. Cheap when one is pending.
pub fn release_soon() {
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("em-trim".into())
            .spawn(run);
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the memory trim thread");
        }
    });
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    WAKE.notify_one();
}

fn run() {
    loop {
        let mut guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        while !PENDING.load(Ordering::Acquire) {
            guard = WAKE.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
        drop(guard);
        let first = Instant::now();
        // Settle: each request during the wait starts it again.
        while PENDING.swap(false, Ordering::AcqRel) && first.elapsed() < AT_MOST {
            std::thread::sleep(SETTLE);
        }
        let started = Instant::now();
        let released = trim();
        tracing::debug!(
            released,
            took_ms = started.elapsed().as_millis() as u64,
            "returned freed memory to the system"
        );
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one unsafe call of the server: see Cargo.toml's [lints]
fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointers and touches only glibc's own free lists, which it
    // locks while it walks them; any thread may call it at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators (musl, macOS, Windows) give large free blocks back themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}
