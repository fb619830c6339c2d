//! `pipeline`: batches of `depth` commands drawn from a weighted mix, sent in one round trip,
//! optionally wrapped in MULTI/EXEC. The batch's latency is recorded under PIPELINE (or EXEC);
//! each command inside is counted under its own name.

use rand::RngExt;

use super::{Env, Prepared, Weighted, WorkerState, single_outcome};
use crate::keys::{Rng, key_into};
use crate::metrics::Outcome;
use crate::scenario::raw::PipelineSpec;
use crate::target::resp::{CommandWriter, Value};

/// Commands a batch may hold, in the order of `PipelineCommands`.
const COMMANDS: [&str; 10] = ["SET", "GET", "INCR", "DEL", "HSET", "HGET", "LPUSH", "RPOP", "SADD", "ZADD"];
/// Lists written by LPUSH in a pipeline are trimmed to this length in the same batch.
const LIST_BOUND: i64 = 100;

/// Runtime form of a `pipeline` workload.
pub struct Pipeline {
    choose: Weighted,
    depth: usize,
    transaction: bool,
}

impl Pipeline {
    /// From the scenario's options.
    pub fn new(spec: &PipelineSpec) -> Pipeline {
        Pipeline {
            choose: Weighted::new(spec.commands.weights().into_iter().map(|(_, w)| w)),
            depth: spec.depth.max(1) as usize,
            transaction: spec.transaction,
        }
    }

    /// Operation names: the commands, then the batch.
    pub fn ops(&self) -> Vec<&'static str> {
        let mut ops = COMMANDS.to_vec();
        ops.push(if self.transaction { "EXEC" } else { "PIPELINE" });
        ops
    }

    /// Whether batches run as MULTI/EXEC.
    pub fn transaction(&self) -> bool {
        self.transaction
    }

    fn batch_op(&self) -> u16 {
        COMMANDS.len() as u16
    }

    /// Writes one batch; the command ops go to `st.batch`, one entry per reply they produce.
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>) -> Prepared {
        st.batch.clear();
        if self.transaction {
            CommandWriter::new(buf, 1).arg(b"MULTI");
        }
        let first = st.picker.next(rng);
        for i in 0..self.depth {
            let op = self.choose.pick(rng);
            let k = if i == 0 { first } else { env.batch_index(first, st.picker.next(rng)) };
            let family: &[u8] = match op {
                0 | 1 | 3 => b"",
                2 => b"c:",
                4 | 5 => b"h:",
                6 | 7 => b"l:",
                8 => b"s:",
                _ => b"z:",
            };
            env.batch_key(&mut st.key, family, k);
            let mut member = Vec::with_capacity(12);
            key_into(&mut member, b"m", rng.random_range(0..1000));
            match op {
                0 => {
                    st.seq += 1;
                    env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                    CommandWriter::new(buf, 3).arg(b"SET").arg(&st.key).arg(&st.value);
                }
                1 => {
                    CommandWriter::new(buf, 2).arg(b"GET").arg(&st.key);
                }
                2 => {
                    CommandWriter::new(buf, 2).arg(b"INCR").arg(&st.key);
                }
                3 => {
                    CommandWriter::new(buf, 2).arg(b"DEL").arg(&st.key);
                }
                4 => {
                    st.seq += 1;
                    env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                    CommandWriter::new(buf, 4).arg(b"HSET").arg(&st.key).arg(&member).arg(&st.value);
                }
                5 => {
                    CommandWriter::new(buf, 3).arg(b"HGET").arg(&st.key).arg(&member);
                }
                6 => {
                    st.seq += 1;
                    env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                    CommandWriter::new(buf, 3).arg(b"LPUSH").arg(&st.key).arg(&st.value);
                    CommandWriter::new(buf, 4).arg(b"LTRIM").arg(&st.key).int(0).int(LIST_BOUND - 1);
                    // The LTRIM's reply belongs to the LPUSH.
                    st.batch.push(op as u16);
                }
                7 => {
                    CommandWriter::new(buf, 2).arg(b"RPOP").arg(&st.key);
                }
                8 => {
                    CommandWriter::new(buf, 3).arg(b"SADD").arg(&st.key).arg(&member);
                }
                _ => {
                    CommandWriter::new(buf, 4).arg(b"ZADD").arg(&st.key).int(rng.random_range(0..1_000_000)).arg(&member);
                }
            }
            st.batch.push(op as u16);
        }
        let commands = st.batch.len();
        if self.transaction {
            CommandWriter::new(buf, 1).arg(b"EXEC");
        }
        let replies = if self.transaction { commands + 2 } else { commands };
        Prepared { op: self.batch_op(), replies, ack: None, tag: 0 }
    }

    /// Per-command counts, then the batch outcome with its latency.
    pub fn classify(&self, p: &Prepared, st: &WorkerState, replies: &[Value], sink: &mut dyn FnMut(u16, Outcome, bool)) {
        let per_command: &[Value] = if self.transaction {
            match replies.last() {
                Some(Value::Array(items)) => items,
                Some(other) => {
                    // EXEC failed as a whole (EXECABORT, or nil when aborted): every command failed with it.
                    let outcome = single_outcome(std::slice::from_ref(other), false);
                    let outcome = if outcome == Outcome::Ok { Outcome::server_error("EXECABORT") } else { outcome };
                    self.each_command(st, |_| outcome, sink);
                    sink(p.op, outcome, true);
                    return;
                }
                None => &[],
            }
        } else {
            replies
        };
        let mut i = 0;
        let mut batch_outcome = Outcome::Ok;
        while i < st.batch.len() {
            let op = st.batch[i];
            // An LPUSH is followed by its LTRIM: both replies belong to one counted command.
            let span = if op == 6 && st.batch.get(i + 1) == Some(&6) { 2 } else { 1 };
            let these = per_command.get(i..i + span).unwrap_or(&[]);
            let outcome = single_outcome(these, matches!(op, 1 | 5 | 7));
            if matches!(outcome, Outcome::Error(_)) {
                batch_outcome = outcome;
            }
            sink(op, outcome, false);
            i += span;
        }
        sink(p.op, batch_outcome, true);
    }

    /// Reports every command of the batch with the same outcome (a failed round trip).
    pub fn each_command(&self, st: &WorkerState, outcome: impl Fn(u16) -> Outcome, sink: &mut dyn FnMut(u16, Outcome, bool)) {
        let mut i = 0;
        while i < st.batch.len() {
            let op = st.batch[i];
            let span = if op == 6 && st.batch.get(i + 1) == Some(&6) { 2 } else { 1 };
            sink(op, outcome(op), false);
            i += span;
        }
    }
}
