//! Bounded memory per connection: a budget of in-flight bytes the reader must acquire
//! before it reads a payload or queues a read, and a small pool of reusable buffers.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Bytes of requests and replies a connection may hold at once. A flood of requests makes
/// the reader wait here, so the client's own socket buffer absorbs the rest.
pub(crate) struct Budget {
    cap: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay meaningful even if a holder panicked between two statements.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Budget {
    pub(crate) fn new(cap: usize) -> Self {
        Budget { cap: cap.max(1), used: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits until `cost` fits, and takes it; returns what was taken, for `release`.
    /// A request larger than the whole budget waits for an idle connection instead of
    /// deadlocking.
    pub(crate) fn acquire(&self, cost: usize) -> usize {
        let cost = cost.min(self.cap);
        let mut used = lock(&self.used);
        while *used > 0 && *used + cost > self.cap {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += cost;
        cost
    }

    pub(crate) fn release(&self, taken: usize) {
        let mut used = lock(&self.used);
        *used = used.saturating_sub(taken);
        drop(used);
        self.freed.notify_all();
    }
}

/// Reuses request and reply buffers so steady traffic allocates nothing. Buffers keep
/// their length and stale contents (no zeroing): every user overwrites what it sends.
pub(crate) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept per connection, and the largest one kept: enough for a few requests of
/// the usual sizes without holding on to a burst of 32 MiB reads forever.
const POOL_BUFFERS: usize = 16;
const POOL_MAX_BUFFER: usize = 4 << 20;

impl BufPool {
    pub(crate) fn new() -> Self {
        BufPool { free: Mutex::new(Vec::new()) }
    }

    pub(crate) fn get(&self) -> Vec<u8> {
        lock(&self.free).pop().unwrap_or_default()
    }

    pub(crate) fn put(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > POOL_MAX_BUFFER {
            return;
        }
        let mut free = lock(&self.free);
        if free.len() < POOL_BUFFERS {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn acquire_waits_for_release() {
        let b = Arc::new(Budget::new(100));
        assert_eq!(b.acquire(60), 60);
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || b2.acquire(60));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!t.is_finished());
        b.release(60);
        assert_eq!(t.join().ok(), Some(60));
        // Larger than the cap: clamped, and granted once the budget is idle.
        b.release(60);
        assert_eq!(b.acquire(1000), 100);
    }

    #[test]
    fn pool_keeps_a_bounded_number() {
        let p = BufPool::new();
        for _ in 0..20 {
            p.put(vec![0; 10]);
        }
        p.put(vec![0; POOL_MAX_BUFFER + 1]);
        let mut n = 0;
        while p.get().capacity() > 0 {
            n += 1;
        }
        assert_eq!(n, POOL_BUFFERS);
    }
}
