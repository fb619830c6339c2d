//! `hash`: HSET, HGET, HMGET, HGETALL, HINCRBY, HDEL. A hash holds at most `fields` fields: value
//! fields for HSET/HGET/HMGET/HDEL and, when HINCRBY runs, counter fields of their own (a tenth of
//! the fields, at least one) so that HINCRBY never meets a non-integer value.

use rand::RngExt;

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::HashSpec;

/// Runtime form of a `hash` workload (operations in the order of `HashCommands`).
pub struct Hash {
    choose: Weighted,
    value_fields: u32,
    counter_fields: u32,
    hmget: u32,
}

/// How `fields` is split between value fields and counter fields: `(values, counters)`.
pub fn field_split(spec: &HashSpec) -> (u32, u32) {
    let fields = spec.fields.max(1);
    let w = spec.commands.weights();
    let incr = w.iter().any(|(n, x)| *n == "HINCRBY" && *x > 0.0);
    let values = w.iter().any(|(n, x)| matches!(*n, "HSET" | "HGET" | "HMGET" | "HDEL") && *x > 0.0);
    match (values, incr) {
        (true, true) => {
            // Validation keeps `fields` at 2 or more here; stay in range if it were not.
            let counters = (fields / 10).clamp(1, fields.saturating_sub(1).max(1));
            (fields.saturating_sub(counters).max(1), counters)
        }
        (false, true) => (1, fields),
        _ => (fields, 1),
    }
}

impl Hash {
    /// From the scenario's options.
    pub fn new(spec: &HashSpec) -> Hash {
        let (value_fields, counter_fields) = field_split(spec);
        Hash { choose: Weighted::new(spec.commands.weights().into_iter().map(|(_, w)| w)), value_fields, counter_fields, hmget: spec.hmget_fields.max(1) }
    }

    fn field(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        key_into(out, b"f", u64::from(rng.random_range(0..self.value_fields)));
    }

    /// Writes the next command(s).
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let op = self.choose.pick(rng) as u16;
        let mut k = st.picker.next(rng);
        key_into(&mut st.key, env.prefix, k);
        let mut counter = None;
        match op {
            0 => {
                self.field(rng, &mut st.member);
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                rt.push(Command::Hset, op, 3).arg(&st.key).arg(&st.member).arg(&st.value);
                super::expire(env, rt, op, &st.key);
            }
            1 => {
                self.field(rng, &mut st.member);
                rt.push(Command::Hget, op, 2).arg(&st.key).arg(&st.member);
            }
            2 => {
                let mut w = rt.push(Command::Hmget, op, 1 + self.hmget as usize).arg(&st.key);
                for _ in 0..self.hmget {
                    self.field(rng, &mut st.member);
                    w = w.arg(&st.member);
                }
            }
            3 => {
                rt.push(Command::Hgetall, op, 1).arg(&st.key);
            }
            4 => {
                if st.shard.1 > 1 {
                    k = super::basic::owned_key(k, st.picker.keys(), st.shard.0, st.shard.1);
                    key_into(&mut st.key, env.prefix, k);
                }
                let field = rng.random_range(0..self.counter_fields);
                key_into(&mut st.member, b"c", u64::from(field));
                rt.push(Command::Hincrby, op, 3).arg(&st.key).arg(&st.member).int(1);
                if env.verify {
                    counter = Some((k, field));
                }
                super::expire(env, rt, op, &st.key);
            }
            _ => {
                self.field(rng, &mut st.member);
                rt.push(Command::Hdel, op, 2).arg(&st.key).arg(&st.member);
            }
        }
        Prepared { op, ack: None, counter, tag: 0, seq: 0 }
    }

    /// The counter field `field` of hash key `k` (what HINCRBY adds to), for verification.
    pub fn counter_field(out: &mut Vec<u8>, field: u32) {
        key_into(out, b"c", u64::from(field));
    }
}
