//! Connections workers keep between their round trips, for both clients: when a pool has a
//! connection for every worker it serves, a checkout and return per round trip buys nothing but
//! its cost (about a third of the native engine's instructions per unpipelined operation; the
//! bb8 checkout that drove redis-rs). Each client decides whether a kept connection is still fit
//! for use; this holds the slots and the rule for when workers may keep them.

use std::sync::Mutex;

/// Whether each of `workers` workers may keep a connection: every one of `pools` pools (workers
/// spread over them in turn) has a connection for each worker it serves and for each of `others`
/// (stream consumers, control commands), so no checkout ever waits for a turn a kept connection
/// holds.
pub fn room_to_keep(workers: usize, others: usize, pools: usize, per_pool: u32) -> bool {
    workers.div_ceil(pools.max(1)) + others <= per_pool as usize
}

/// One slot per worker, holding its connection between round trips; no slots when workers do not
/// keep connections (every `put` then hands the connection straight back to its pool by dropping
/// it).
pub struct Kept<C>(Vec<Mutex<Option<C>>>);

impl<C> Default for Kept<C> {
    fn default() -> Self {
        Kept(Vec::new())
    }
}

impl<C> Kept<C> {
    /// A slot for each of `workers` workers when `keep`, else none.
    pub fn new(workers: usize, keep: bool) -> Kept<C> {
        Kept(if keep { (0..workers).map(|_| Mutex::new(None)).collect() } else { Vec::new() })
    }

    /// `worker`'s kept connection, taken out of its slot.
    pub fn take(&self, worker: usize) -> Option<C> {
        self.0.get(worker)?.lock().expect("kept connection lock").take()
    }

    /// Keeps `conn` for `worker`'s next round trip; dropped (back to its pool) when workers do not
    /// keep connections.
    pub fn put(&self, worker: usize, conn: C) {
        if let Some(slot) = self.0.get(worker) {
            *slot.lock().expect("kept connection lock") = Some(conn);
        }
    }

    /// Gives `worker`'s kept connection back to its pool: the worker is idle until a later phase,
    /// or done.
    pub fn release(&self, worker: usize) {
        drop(self.take(worker));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_keep_connections_only_where_no_checkout_would_wait_for_them() {
        assert!(room_to_keep(8, 0, 1, 8));
        assert!(!room_to_keep(8, 1, 1, 8), "a stream consumer needs a connection too");
        assert!(room_to_keep(9, 0, 2, 5), "9 workers over 2 pools: 5 in the first");
        assert!(!room_to_keep(11, 0, 2, 5));
        let kept = Kept::new(2, true);
        kept.put(1, "c");
        assert_eq!((kept.take(0), kept.take(1), kept.take(1)), (None, Some("c"), None));
        let none = Kept::new(2, false);
        none.put(0, "c");
        assert_eq!(none.take(0), None, "without slots a connection goes back to its pool");
    }
}
