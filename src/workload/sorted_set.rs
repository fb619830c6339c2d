//! `sorted_set`: ZADD, ZINCRBY, ZRANGE (by rank), ZRANGEBYSCORE, ZRANK, ZSCORE, ZREM over a
//! universe of `members` members, which bounds every sorted set's size.

use rand::RngExt;

use super::{Env, Prepared, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::SortedSetSpec;
use crate::target::resp::CommandWriter;

/// Operation names, by id (the order of `SortedSetCommands`).
pub const OPS: [&str; 7] = ["ZADD", "ZINCRBY", "ZRANGE", "ZRANGEBYSCORE", "ZRANK", "ZSCORE", "ZREM"];

/// Scores are drawn from `0..MAX_SCORE`.
const MAX_SCORE: i64 = 1_000_000;

/// Runtime form of a `sorted_set` workload.
pub struct SortedSet {
    choose: Weighted,
    members: u32,
    range: i64,
}

impl SortedSet {
    /// From the scenario's options.
    pub fn new(spec: &SortedSetSpec) -> SortedSet {
        SortedSet { choose: Weighted::new(spec.commands.weights().into_iter().map(|(_, w)| w)), members: spec.members.max(1), range: i64::from(spec.range) }
    }

    /// Writes the next command(s).
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        let op = self.choose.pick(rng);
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        key_into(&mut st.value, b"m", u64::from(rng.random_range(0..self.members)));
        let mut replies = 1;
        match op {
            0 => {
                CommandWriter::new(buf, 4).arg(b"ZADD").arg(&st.key).int(rng.random_range(0..MAX_SCORE)).arg(&st.value);
                replies += super::expire(env, &st.key, buf);
            }
            1 => {
                CommandWriter::new(buf, 4).arg(b"ZINCRBY").arg(&st.key).int(rng.random_range(1..100)).arg(&st.value);
                replies += super::expire(env, &st.key, buf);
            }
            2 => {
                CommandWriter::new(buf, 4).arg(b"ZRANGE").arg(&st.key).int(0).int(self.range - 1);
            }
            3 => {
                let min = rng.random_range(0..MAX_SCORE);
                CommandWriter::new(buf, 7).arg(b"ZRANGEBYSCORE").arg(&st.key).int(min).arg(b"+inf").arg(b"LIMIT").int(0).int(self.range);
            }
            4 => {
                CommandWriter::new(buf, 3).arg(b"ZRANK").arg(&st.key).arg(&st.value);
            }
            5 => {
                CommandWriter::new(buf, 3).arg(b"ZSCORE").arg(&st.key).arg(&st.value);
            }
            _ => {
                CommandWriter::new(buf, 3).arg(b"ZREM").arg(&st.key).arg(&st.value);
            }
        }
        Prepared { op: op as u16, replies, ack: None, tag: 0 }
    }
}
