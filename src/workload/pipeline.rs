//! `pipeline`: batches of `depth` commands drawn from a weighted mix, sent in one round trip,
//! optionally wrapped in MULTI/EXEC. The batch is the scheduled operation, recorded under PIPELINE
//! (or EXEC) with its latency; each command inside is counted under its own name.

use rand::RngExt;

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, key_into};
use crate::scenario::raw::PipelineSpec;

/// Commands a batch may hold, in the order of `PipelineCommands` (their operation ids).
const COMMANDS: [Command; 10] =
    [Command::Set, Command::Get, Command::Incr, Command::Del, Command::Hset, Command::Hget, Command::Lpush, Command::Rpop, Command::Sadd, Command::Zadd];
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

    /// Writes one batch.
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        let batch = COMMANDS.len() as u16;
        if self.transaction {
            rt.push_aux(Command::Multi, batch, 0);
        }
        let first = st.picker.next(rng);
        for i in 0..self.depth {
            let op = self.choose.pick(rng);
            let command = COMMANDS[op];
            let op = op as u16;
            let k = if i == 0 { first } else { env.batch_index(first, st.picker.next(rng)) };
            let family: &[u8] = match command {
                Command::Incr => b"c:",
                Command::Hset | Command::Hget => b"h:",
                Command::Lpush | Command::Rpop => b"l:",
                Command::Sadd => b"s:",
                Command::Zadd => b"z:",
                _ => b"",
            };
            env.batch_key(&mut st.key, family, k);
            key_into(&mut st.member, b"m", rng.random_range(0..1000));
            match command {
                Command::Set => {
                    st.seq += 1;
                    env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                    match env.ttl_ms {
                        Some(ttl) => rt.push(command, op, 4).arg(&st.key).arg(&st.value).arg(b"PX").int(ttl as i64),
                        None => rt.push(command, op, 2).arg(&st.key).arg(&st.value),
                    };
                }
                Command::Get | Command::Incr | Command::Del | Command::Rpop => {
                    rt.push(command, op, 1).arg(&st.key);
                    if command == Command::Incr {
                        super::expire(env, rt, op, &st.key);
                    }
                }
                Command::Hset => {
                    st.seq += 1;
                    env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                    rt.push(command, op, 3).arg(&st.key).arg(&st.member).arg(&st.value);
                    super::expire(env, rt, op, &st.key);
                }
                Command::Hget | Command::Sadd => {
                    rt.push(command, op, 2).arg(&st.key).arg(&st.member);
                    if command == Command::Sadd {
                        super::expire(env, rt, op, &st.key);
                    }
                }
                Command::Lpush => {
                    st.seq += 1;
                    env.values.make(rng, ((st.worker as u64) << 40) | st.seq, &mut st.value);
                    rt.push(command, op, 2).arg(&st.key).arg(&st.value);
                    rt.push_aux(Command::Ltrim, op, 3).arg(&st.key).int(0).int(LIST_BOUND - 1);
                    super::expire(env, rt, op, &st.key);
                }
                _ => {
                    rt.push(Command::Zadd, op, 3).arg(&st.key).int(rng.random_range(0..1_000_000)).arg(&st.member);
                    super::expire(env, rt, op, &st.key);
                }
            }
        }
        if self.transaction {
            rt.push_aux(Command::Exec, batch, 0);
        }
        Prepared { op: batch, ack: None, counter: None, tag: 0, seq: 0 }
    }
}
