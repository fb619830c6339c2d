//! `set`: SADD, SREM, SISMEMBER, SMEMBERS, SCARD over a universe of `members` members, which
//! bounds every set's size.

use rand::RngExt;

use super::{Env, Prepared, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::SetSpec;
use crate::target::resp::CommandWriter;

/// Operation names, by id (the order of `SetCommands`).
pub const OPS: [&str; 5] = ["SADD", "SREM", "SISMEMBER", "SMEMBERS", "SCARD"];

/// Runtime form of a `set` workload.
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
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        let op = self.choose.pick(rng);
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        key_into(&mut st.value, b"m", u64::from(rng.random_range(0..self.members)));
        let mut replies = 1;
        match op {
            0 => {
                CommandWriter::new(buf, 3).arg(b"SADD").arg(&st.key).arg(&st.value);
                replies += super::expire(env, &st.key, buf);
            }
            1 => {
                CommandWriter::new(buf, 3).arg(b"SREM").arg(&st.key).arg(&st.value);
            }
            2 => {
                CommandWriter::new(buf, 3).arg(b"SISMEMBER").arg(&st.key).arg(&st.value);
            }
            3 => {
                CommandWriter::new(buf, 2).arg(b"SMEMBERS").arg(&st.key);
            }
            _ => {
                CommandWriter::new(buf, 2).arg(b"SCARD").arg(&st.key);
            }
        }
        Prepared { op: op as u16, replies, ack: None, tag: 0 }
    }
}
