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
            env.batch_key(&mut st.key, b"", index);
            if op == 0 {
                rt.push(Command::Get, op, 1).arg(&st.key);
            } else {
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                match env.ttl_ms {
                    Some(ttl) => rt.push(Command::Set, op, 4).arg(&st.key).arg(&st.value).arg(b"PX").int(ttl as i64),
                    None => rt.push(Command::Set, op, 2).arg(&st.key).arg(&st.value),
                };
            }
        }
        Prepared { op: if self.depth > 1 { BATCH } else { single }, ack: None, counter: None, tag: 0, seq: 0 }
    }
}
