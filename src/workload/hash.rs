//! `hash`: HSET, HGET, HMGET, HGETALL, HINCRBY, HDEL over a universe of `fields` fields. HINCRBY
//! uses its own counter fields so it never meets a non-integer value.

use rand::RngExt;

use super::{Env, Prepared, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::HashSpec;
use crate::target::resp::CommandWriter;

/// Operation names, by id (the order of `HashCommands`).
pub const OPS: [&str; 6] = ["HSET", "HGET", "HMGET", "HGETALL", "HINCRBY", "HDEL"];

/// Runtime form of a `hash` workload.
pub struct Hash {
    choose: Weighted,
    fields: u32,
    hmget: u32,
}

impl Hash {
    /// From the scenario's options.
    pub fn new(spec: &HashSpec) -> Hash {
        Hash { choose: Weighted::new(spec.commands.weights().into_iter().map(|(_, w)| w)), fields: spec.fields.max(1), hmget: spec.hmget_fields.max(1) }
    }

    fn field(&self, rng: &mut Rng, out: &mut Vec<u8>, prefix: &[u8]) {
        key_into(out, prefix, u64::from(rng.random_range(0..self.fields)));
    }

    /// Writes the next command(s).
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        let op = self.choose.pick(rng);
        key_into(&mut st.key, env.prefix, st.picker.next(rng));
        let mut field = Vec::with_capacity(12);
        let mut replies = 1;
        match op {
            0 => {
                self.field(rng, &mut field, b"f");
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                CommandWriter::new(buf, 4).arg(b"HSET").arg(&st.key).arg(&field).arg(&st.value);
                replies += super::expire(env, &st.key, buf);
            }
            1 => {
                self.field(rng, &mut field, b"f");
                CommandWriter::new(buf, 3).arg(b"HGET").arg(&st.key).arg(&field);
            }
            2 => {
                let mut w = CommandWriter::new(buf, 2 + self.hmget as usize).arg(b"HMGET").arg(&st.key);
                for _ in 0..self.hmget {
                    self.field(rng, &mut field, b"f");
                    w = w.arg(&field);
                }
            }
            3 => {
                CommandWriter::new(buf, 2).arg(b"HGETALL").arg(&st.key);
            }
            4 => {
                self.field(rng, &mut field, b"c");
                CommandWriter::new(buf, 4).arg(b"HINCRBY").arg(&st.key).arg(&field).int(1);
                replies += super::expire(env, &st.key, buf);
            }
            _ => {
                self.field(rng, &mut field, b"f");
                CommandWriter::new(buf, 3).arg(b"HDEL").arg(&st.key).arg(&field);
            }
        }
        Prepared { op: op as u16, replies, ack: None, tag: 0 }
    }
}
