//! `list`: LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN, LTRIM. Every push is followed by an LTRIM in the
//! same round trip, so no list ever grows past `max_length`.

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::ListSpec;

/// Runtime form of a `list` workload (operations in the order of `ListCommands`).
pub struct List {
    choose: Weighted,
    max_len: i64,
    range: i64,
}

impl List {
    /// From the scenario's options.
    pub fn new(spec: &ListSpec) -> List {
        List { choose: Weighted::new(spec.commands.weights().into_iter().map(|(_, w)| w)), max_len: i64::from(spec.max_length), range: i64::from(spec.range) }
    }

    /// Writes the next command(s).
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let op = self.choose.pick(rng) as u16;
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        match op {
            0 | 1 => {
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                rt.push(if op == 0 { Command::Lpush } else { Command::Rpush }, op, 2).arg(&st.key).arg(&st.value);
                // Trim from the end we did not push to, keeping the newest elements.
                let (start, stop) = if op == 0 { (0, self.max_len - 1) } else { (-self.max_len, -1) };
                rt.push_aux(Command::Ltrim, op, 3).arg(&st.key).int(start).int(stop);
                super::expire(env, rt, op, &st.key);
            }
            2 => {
                rt.push(Command::Lpop, op, 1).arg(&st.key);
            }
            3 => {
                rt.push(Command::Rpop, op, 1).arg(&st.key);
            }
            4 => {
                rt.push(Command::Lrange, op, 3).arg(&st.key).int(0).int(self.range - 1);
            }
            5 => {
                rt.push(Command::Llen, op, 1).arg(&st.key);
            }
            _ => {
                rt.push(Command::Ltrim, op, 3).arg(&st.key).int(0).int(self.max_len - 1);
            }
        }
        Prepared { op, ack: None, counter: None, tag: 0, seq: 0 }
    }
}
