//! `basic`: SET / GET / DEL / INCR on string keys. GETs read the same keys SETs write, so hits are
//! real; INCR uses its own counter keys so it never meets a non-integer value.

use super::{Env, Prepared, Weighted, WorkerState};
use crate::keys::{Rng, digest, key_into};
use crate::scenario::raw::BasicSpec;
use crate::target::resp::CommandWriter;

/// Operation names, by id.
pub const OPS: [&str; 4] = ["GET", "SET", "DEL", "INCR"];
/// The digest remembered for a deleted key.
pub const TOMBSTONE: u64 = u64::MAX;

/// Runtime form of a `basic` workload.
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
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        let op = self.choose.pick(rng);
        let mut k = st.picker.next(rng);
        if env.verify && (op == 1 || op == 2) {
            k = owned_key(k, st.picker.keys(), st.worker, st.writers);
        }
        let mut p = Prepared { op: op as u16, replies: 1, ack: None, tag: 0 };
        match op {
            0 => {
                key_into(&mut st.key, env.prefix, k);
                CommandWriter::new(buf, 2).arg(b"GET").arg(&st.key);
            }
            1 => {
                key_into(&mut st.key, env.prefix, k);
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                match env.ttl_ms {
                    Some(ttl) => {
                        CommandWriter::new(buf, 5).arg(b"SET").arg(&st.key).arg(&st.value).arg(b"PX").int(ttl as i64);
                    }
                    None => {
                        CommandWriter::new(buf, 3).arg(b"SET").arg(&st.key).arg(&st.value);
                    }
                }
                if env.verify {
                    p.ack = Some((k, digest(&st.value)));
                }
            }
            2 => {
                key_into(&mut st.key, env.prefix, k);
                CommandWriter::new(buf, 2).arg(b"DEL").arg(&st.key);
                if env.verify {
                    p.ack = Some((k, TOMBSTONE));
                }
            }
            _ => {
                counter_key(&mut st.key, env.prefix, k);
                CommandWriter::new(buf, 2).arg(b"INCR").arg(&st.key);
                if let Some(ttl) = env.ttl_ms {
                    CommandWriter::new(buf, 3).arg(b"PEXPIRE").arg(&st.key).int(ttl as i64);
                    p.replies = 2;
                }
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
