//! Scale-out: one scenario run by N processes (`apply --shard I/N`), each doing its share, so that
//! the union of the shards is the single-process run and `merge` can add them back up exactly.
//!
//! - The open-loop schedule is striped: shard I takes scheduled operations I, I+N, I+2N, … (the
//!   pacer and the workers map local operation n to global operation I + N·n), so the shards
//!   together send exactly the single-process schedule, never N simultaneous bursts.
//! - Workers, pooled connections and pub/sub subscribers are divided (at least one each).
//! - Keys written under `verify` are partitioned by (shard, worker): worker w of shard I writes as
//!   global writer w·N + I of `writers_each`·N, so no two processes write one key.
//! - Pub/sub channels get a per-shard namespace: each shard's subscribers hear its own
//!   publishers, so published/received/lost stay exact per shard and add up in `merge`.
//! - Faults run on shard 0 only; every shard judges their effect on its own traffic.
//! - Per-shard cleanup is skipped (a shard that finishes first must not remove keys another still
//!   uses or has yet to verify): `redis-test cleanup FILE` runs afterwards.

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::scenario::model::WorkloadKind;

/// Which share of a run this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    /// 0-based index.
    pub index: u32,
    /// How many shards share the run.
    pub count: u32,
    /// Writers per shard for the verify key partition: the same on every shard (the largest
    /// share of the busiest phase's workers).
    pub writers_each: u32,
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(text: &str) -> Result<(u32, u32), String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("`{text}`: expected INDEX/COUNT, e.g. 0/3"))?;
        let i: u32 = i.trim().parse().map_err(|_| format!("`{text}`: the index is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| format!("`{text}`: the count is not a number"))?;
        if n == 0 || n > 10_000 {
            return Err(format!("`{text}`: the count must be between 1 and 10000"));
        }
        if i >= n {
            return Err(format!("`{text}`: the index must be below the count (0..{})", n - 1));
        }
        Ok((i, n))
    }

    /// The global number of this shard's local operation `n`.
    pub fn global_op(&self, n: u64) -> u64 {
        u64::from(self.index) + u64::from(self.count) * n
    }

    /// How many of the global operations `0..global` are this shard's.
    pub fn local_ops(&self, global: u64) -> u64 {
        let (i, n) = (u64::from(self.index), u64::from(self.count));
        if global > i { (global - i).div_ceil(n) } else { 0 }
    }

    /// The verify writer slot of local worker `worker`, and the number of slots.
    pub fn writer(&self, worker: usize) -> (usize, usize) {
        let n = self.count as usize;
        (worker * n + self.index as usize, self.writers_each as usize * n)
    }

    /// Whether this shard runs the faults.
    pub fn runs_faults(&self) -> bool {
        self.index == 0
    }
}

/// Shard `index`'s part of `total` (workers, connections, subscribers): an even split, the first
/// `total % count` shards one more, at least one each.
pub fn share(total: u32, index: u32, count: u32) -> u32 {
    (total / count + u32::from(index < total % count)).max(1)
}

/// The scenario as shard `index` of `count` runs it (rates are not divided: the stripe takes
/// every `count`-th scheduled operation).
pub fn divide(scenario: &Scenario, index: u32, count: u32) -> (Scenario, Shard) {
    let mut s = scenario.clone();
    let busiest = s.phases.iter().map(|p| p.workers.0.max(p.workers.1)).max().unwrap_or(1);
    for p in &mut s.phases {
        p.workers = (share(p.workers.0, index, count), share(p.workers.1, index, count));
    }
    s.connections.per_pool = share(s.connections.per_pool, index, count);
    for w in &mut s.workloads {
        if let WorkloadKind::Pubsub(spec) = &mut w.kind {
            spec.subscribers = share(spec.subscribers, index, count);
            w.keyspace.prefix.push_str(&format!("s{index}:"));
        }
        // Each shard its own streams and consumers: every entry is booked by the shard that
        // produced it, and merge adds the streams' figures.
        if let WorkloadKind::Stream(_) = &w.kind {
            w.keyspace.prefix.push_str(&format!("s{index}:"));
        }
    }
    s.cleanup = false;
    (s, Shard { index, count, writers_each: busiest.div_ceil(count).max(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripes_of_all_shards_are_the_schedule_once() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3, writers_each: 1 }).collect();
        for global in [0u64, 1, 2, 3, 10, 1000, 1001] {
            assert_eq!(shards.iter().map(|s| s.local_ops(global)).sum::<u64>(), global, "{global}");
        }
        let mut seen: Vec<u64> = shards.iter().flat_map(|s| (0..s.local_ops(100)).map(|n| s.global_op(n))).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn shares_add_up_and_never_drop_to_zero() {
        assert_eq!((0..3).map(|i| share(64, i, 3)).collect::<Vec<_>>(), vec![22, 21, 21]);
        assert_eq!((0..4).map(|i| share(2, i, 4)).collect::<Vec<_>>(), vec![1, 1, 1, 1]);
        let writers: Vec<(usize, usize)> = (0..3).map(|index| Shard { index, count: 3, writers_each: 22 }.writer(21)).collect();
        assert_eq!(writers, vec![(63, 66), (64, 66), (65, 66)]);
    }

    #[test]
    fn indexes_are_parsed_and_checked() {
        assert_eq!(Shard::parse("2/3"), Ok((2, 3)));
        assert!(Shard::parse("3/3").unwrap_err().contains("below the count"));
        assert!(Shard::parse("1").unwrap_err().contains("INDEX/COUNT"));
        assert!(Shard::parse("0/0").is_err());
    }
}
