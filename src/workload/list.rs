//! `list`: LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN, LTRIM. Every push is followed by an LTRIM in the
//! same round trip, so no list ever grows past `max_length`.

use super::{Env, Prepared, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::ListSpec;
use crate::target::resp::CommandWriter;

/// Operation names, by id (the order of `ListCommands`).
pub const OPS: [&str; 7] = ["LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LTRIM"];

/// Runtime form of a `list` workload.
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
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        let op = self.choose.pick(rng);
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        let mut replies = 1;
        match op {
            0 | 1 => {
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                CommandWriter::new(buf, 3).arg(if op == 0 { b"LPUSH" } else { b"RPUSH" }).arg(&st.key).arg(&st.value);
                // Trim from the end we did not push to, keeping the newest elements.
                let (start, stop) = if op == 0 { (0, self.max_len - 1) } else { (-self.max_len, -1) };
                CommandWriter::new(buf, 4).arg(b"LTRIM").arg(&st.key).int(start).int(stop);
                replies += 1;
                replies += super::expire(env, &st.key, buf);
            }
            2 => {
                CommandWriter::new(buf, 2).arg(b"LPOP").arg(&st.key);
            }
            3 => {
                CommandWriter::new(buf, 2).arg(b"RPOP").arg(&st.key);
            }
            4 => {
                CommandWriter::new(buf, 4).arg(b"LRANGE").arg(&st.key).int(0).int(self.range - 1);
            }
            5 => {
                CommandWriter::new(buf, 2).arg(b"LLEN").arg(&st.key);
            }
            _ => {
                CommandWriter::new(buf, 4).arg(b"LTRIM").arg(&st.key).int(0).int(self.max_len - 1);
            }
        }
        Prepared { op: op as u16, replies, ack: None, tag: 0 }
    }
}
