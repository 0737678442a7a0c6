//! Bounded memory per connection: a budget of in-flight bytes the reader must acquire
//! before it reads a payload or queues a read, and a small pool of reusable buffers.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Bytes of requests and replies a connection may hold at once. A flood of requests makes
/// the reader wait here, so the client's own socket buffer absorbs the rest.
pub(crate) struct Budget {
    cap: usize,
    /// Bytes taken, and how many threads wait for some to be freed.
    used: Mutex<(usize, usize)>,
    freed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay meaningful even if a holder panicked between two statements.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Budget {
    pub(crate) fn new(cap: usize) -> Self {
        Budget { cap: cap.max(1), used: Mutex::new((0, 0)), freed: Condvar::new() }
    }

    /// Waits until `cost` fits, and takes it; returns what was taken, for `release`.
    /// A request larger than the whole budget waits for an idle connection instead of
    /// deadlocking.
    pub(crate) fn acquire(&self, cost: usize) -> usize {
        let cost = cost.min(self.cap);
        let mut used = lock(&self.used);
        while used.0 > 0 && used.0 + cost > self.cap {
            used.1 += 1;
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
            used.1 -= 1;
        }
        used.0 += cost;
        cost
    }

    pub(crate) fn release(&self, taken: usize) {
        let mut used = lock(&self.used);
        used.0 = used.0.saturating_sub(taken);
        let waiting = used.1 > 0;
        drop(used);
        // Waking costs a system call even with nobody waiting; most releases have none.
        if waiting {
            self.freed.notify_all();
        }
    }
}

/// Reuses request and reply buffers so steady traffic allocates nothing. Buffers keep
/// their length and stale contents (no zeroing): every user overwrites what it sends.
/// Fresh large buffers are expensive (an mmap, page faults and zeroing each), so the pool
/// keeps enough for a client's usual queue depth: by default nbdcopy has 64 requests of
/// 256 KiB in flight per connection.
pub(crate) struct BufPool {
    free: Mutex<(Vec<Vec<u8>>, usize)>,
}

/// Bytes kept per connection, and the largest buffer kept: a burst of 32 MiB requests is
/// not held on to.
const POOL_BYTES: usize = 16 << 20;
const POOL_MAX_BUFFER: usize = 4 << 20;

impl BufPool {
    pub(crate) fn new() -> Self {
        BufPool { free: Mutex::new((Vec::new(), 0)) }
    }

    pub(crate) fn get(&self) -> Vec<u8> {
        let mut free = lock(&self.free);
        match free.0.pop() {
            Some(buf) => {
                free.1 = free.1.saturating_sub(buf.capacity());
                buf
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn put(&self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap == 0 || cap > POOL_MAX_BUFFER {
            return;
        }
        let mut free = lock(&self.free);
        if free.1 + cap <= POOL_BYTES {
            free.1 += cap;
            free.0.push(buf);
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
    fn pool_keeps_a_bounded_amount() {
        let p = BufPool::new();
        for _ in 0..100 {
            p.put(vec![0; 1 << 20]);
        }
        p.put(vec![0; POOL_MAX_BUFFER + 1]);
        let mut bytes = 0;
        loop {
            let b = p.get();
            if b.capacity() == 0 {
                break;
            }
            bytes += b.capacity();
        }
        assert_eq!(bytes, POOL_BYTES);
    }
}
