//! `high_throughput`: the cheapest SET/GET on small values, `pipeline` commands per round trip.
//! Every command counts as an operation and carries its batch's latency, as redis-benchmark does.

use super::{Env, Prepared, Weighted, WorkerState};
use crate::keys::Rng;
use crate::scenario::raw::HighThroughputSpec;
use crate::target::resp::CommandWriter;

/// Operation names, by id.
pub const OPS: [&str; 2] = ["GET", "SET"];

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

    /// Writes the next batch (`depth` commands); their ops go to `st.batch`.
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        st.batch.clear();
        let first = st.picker.next(rng);
        for i in 0..self.depth {
            let op = self.choose.pick(rng);
            let index = if i == 0 { first } else { env.batch_index(first, st.picker.next(rng)) };
            env.batch_key(&mut st.key, b"", index);
            if op == 0 {
                CommandWriter::new(buf, 2).arg(b"GET").arg(&st.key);
            } else {
                st.seq += 1;
                env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                match env.ttl_ms {
                    Some(ttl) => CommandWriter::new(buf, 5).arg(b"SET").arg(&st.key).arg(&st.value).arg(b"PX").int(ttl as i64),
                    None => CommandWriter::new(buf, 3).arg(b"SET").arg(&st.key).arg(&st.value),
                };
            }
            st.batch.push(op as u16);
        }
        Prepared { op: st.batch[0], replies: self.depth, ack: None, tag: 0 }
    }
}
