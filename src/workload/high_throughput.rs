//! `high_throughput`: the cheapest SET/GET on small values, `pipeline` commands per round trip.
//! Unpipelined, each GET or SET is the scheduled operation; pipelined, the batch (PIPELINE) is,
//! and its GETs and SETs are counted as commands inside it.

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::Rng;
use crate::scenario::raw::HighThroughputSpec;

/// Operation id of the batch when pipelined (after GET and SET).
const BATCH: u16 = 2;

/// Runtime form of a `high_throughput` workload.
pub struct HighThroughput {
    choose: Weighted,
    depth: usize,
}

impl HighThroughput {
    /// From the scenario's options.
    pub fn new(spec: &HighThroughputSpec) -> HighThroughput {
        HighThroughput { choose: Weighted::new([spec.read_ratio, 1.0 - spec.read_ratio]), depth: spec.pipeline.max(1) as usize }
    }

    /// Writes the next batch (`depth` commands).
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let first = st.picker.next(rng);
        let mut single = 0;
        for i in 0..self.depth {
            let op = self.choose.pick(rng) as u16;
            single = op;
            let index = if i == 0 { first } else { env.batch_index(first, st.picker.next(rng)) };
            if op == 0 {
                env.batch_key_arg(rt.push(Command::Get, op, 1), &mut st.key, b"", index);
            } else {
                st.seq += 1;
                let stamp = ((st.worker as u64) << 40) | st.seq;
                match env.ttl_ms {
                    Some(ttl) => {
                        let w = env.batch_key_arg(rt.push(Command::Set, op, 4), &mut st.key, b"", index);
                        env.values.arg(w, rng, stamp).arg(b"PX").int(ttl as i64)
                    }
                    None => env.values.arg(env.batch_key_arg(rt.push(Command::Set, op, 2), &mut st.key, b"", index), rng, stamp),
                };
            }
        }
        Prepared { op: if self.depth > 1 { BATCH } else { single }, ack: None, counter: None, tag: 0, seq: 0 }
    }
}
