//! `set`: SADD, SREM, SISMEMBER, SMEMBERS, SCARD over a universe of `members` members, which
//! bounds every set's size.

use rand::RngExt;

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::SetSpec;

/// Runtime form of a `set` workload (operations in the order of `SetCommands`).
pub struct Set {
    choose: Weighted,
    members: u32,
}

impl Set {
    /// From the scenario's options.
    pub fn new(spec: &SetSpec) -> Set {
        Set { choose: Weighted::new(spec.commands.weights().into_iter().map(|(_, w)| w)), members: spec.members.max(1) }
    }

    /// Writes the next command(s).
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let op = self.choose.pick(rng) as u16;
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        key_into(&mut st.member, b"m", u64::from(rng.random_range(0..self.members)));
        match op {
            0 => {
                rt.push(Command::Sadd, op, 2).arg(&st.key).arg(&st.member);
                super::expire(env, rt, op, &st.key);
            }
            1 => {
                rt.push(Command::Srem, op, 2).arg(&st.key).arg(&st.member);
            }
            2 => {
                rt.push(Command::Sismember, op, 2).arg(&st.key).arg(&st.member);
            }
            3 => {
                rt.push(Command::Smembers, op, 1).arg(&st.key);
            }
            _ => {
                rt.push(Command::Scard, op, 1).arg(&st.key);
            }
        }
        Prepared { op, ack: None, counter: None, tag: 0, seq: 0 }
    }
}
