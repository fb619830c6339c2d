//! `sorted_set`: ZADD, ZINCRBY, ZRANGE (by rank), ZRANGEBYSCORE, ZRANK, ZSCORE, ZREM over a
//! universe of `members` members, which bounds every sorted set's size.

use rand::RngExt;

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::SortedSetSpec;

/// Scores are drawn from `0..MAX_SCORE`.
const MAX_SCORE: i64 = 1_000_000;

/// Runtime form of a `sorted_set` workload (operations in the order of `SortedSetCommands`).
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
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let op = self.choose.pick(rng) as u16;
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        key_into(&mut st.member, b"m", u64::from(rng.random_range(0..self.members)));
        match op {
            0 => {
                rt.push(Command::Zadd, op, 3).arg(&st.key).int(rng.random_range(0..MAX_SCORE)).arg(&st.member);
                super::expire(env, rt, op, &st.key);
            }
            1 => {
                rt.push(Command::Zincrby, op, 3).arg(&st.key).int(rng.random_range(1..100)).arg(&st.member);
                super::expire(env, rt, op, &st.key);
            }
            2 => {
                rt.push(Command::Zrange, op, 3).arg(&st.key).int(0).int(self.range - 1);
            }
            3 => {
                let min = rng.random_range(0..MAX_SCORE);
                rt.push(Command::Zrangebyscore, op, 6).arg(&st.key).int(min).arg(b"+inf").arg(b"LIMIT").int(0).int(self.range);
            }
            4 => {
                rt.push(Command::Zrank, op, 2).arg(&st.key).arg(&st.member);
            }
            5 => {
                rt.push(Command::Zscore, op, 2).arg(&st.key).arg(&st.member);
            }
            _ => {
                rt.push(Command::Zrem, op, 2).arg(&st.key).arg(&st.member);
            }
        }
        Prepared { op, ack: None, counter: None, tag: 0, seq: 0 }
    }
}
