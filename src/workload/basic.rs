//! `basic`: SET / GET / DEL / INCR on string keys. GETs read the same keys SETs write, so hits are
//! real; INCR uses its own counter keys so it never meets a non-integer value.

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, digest, key_into};
use crate::scenario::raw::BasicSpec;

/// The digest remembered for a deleted key.
pub const TOMBSTONE: u64 = u64::MAX;

/// Runtime form of a `basic` workload (operations GET, SET, DEL, INCR, in that order).
pub struct Basic {
    choose: Weighted,
}

impl Basic {
    /// From the scenario's options.
    pub fn new(spec: &BasicSpec) -> Basic {
        let set = (1.0 - spec.read_ratio - spec.delete_ratio - spec.incr_ratio).max(0.0);
        Basic { choose: Weighted::new([spec.read_ratio, set, spec.delete_ratio, spec.incr_ratio]) }
    }

    /// Writes the next command.
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let op = self.choose.pick(rng) as u16;
        let mut k = st.picker.next(rng);
        if env.verify && (op == 1 || op == 2) {
            k = owned_key(k, st.picker.keys(), st.worker, st.writers);
        }
        let mut p = Prepared { op, ack: None, counter: None, tag: 0, seq: 0 };
        match op {
            0 => {
                key_into(&mut st.key, env.prefix, k);
                rt.push(Command::Get, op, 1).arg(&st.key);
            }
            1 => {
                key_into(&mut st.key, env.prefix, k);
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                match env.ttl_ms {
                    Some(ttl) => rt.push(Command::Set, op, 4).arg(&st.key).arg(&st.value).arg(b"PX").int(ttl as i64),
                    None => rt.push(Command::Set, op, 2).arg(&st.key).arg(&st.value),
                };
                if env.verify {
                    p.ack = Some((k, digest(&st.value)));
                }
            }
            2 => {
                key_into(&mut st.key, env.prefix, k);
                rt.push(Command::Del, op, 1).arg(&st.key);
                if env.verify {
                    p.ack = Some((k, TOMBSTONE));
                }
            }
            _ => {
                if st.shard.1 > 1 {
                    k = owned_key(k, st.picker.keys(), st.shard.0, st.shard.1);
                }
                counter_key(&mut st.key, env.prefix, k);
                rt.push(Command::Incr, op, 1).arg(&st.key);
                if env.verify {
                    p.counter = Some((k, 0));
                }
                super::expire(env, rt, op, &st.key);
            }
        }
        p
    }
}

/// The key of counter `k` (`<prefix>c:<k>`), apart from the string keys SET writes.
pub fn counter_key(out: &mut Vec<u8>, prefix: &[u8], k: u64) {
    out.clear();
    out.extend_from_slice(prefix);
    out.extend_from_slice(b"c:");
    crate::keys::push_decimal(out, k);
}

/// With `verify`, each key is written by one worker only (`k % writers == worker`), so the last
/// acknowledged write of a key is also the last one applied and can be checked afterwards.
pub fn owned_key(k: u64, keys: u64, worker: usize, writers: usize) -> u64 {
    let w = writers.max(1) as u64;
    let slot = worker as u64 % w;
    let base = k - k % w;
    if base + slot < keys { base + slot } else { slot.min(keys - 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_keys_partition_the_keyspace() {
        for k in 0..100 {
            let o = owned_key(k, 100, 3, 8);
            assert!(o < 100);
            assert_eq!(o % 8, 3);
        }
        assert_eq!(owned_key(99, 100, 7, 8), 7, "past the end wraps to the worker's first key");
        assert_eq!(owned_key(5, 3, 7, 8), 2, "tiny keyspaces stay in range");
    }
}
