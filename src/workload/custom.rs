//! `custom`: your own commands, from templates. Each round trip is one template drawn by weight
//! (or `depth` of them, or the whole sequence), rendered into the round trip's bytes with no
//! allocation: placeholders write into per-worker scratch, key arguments get the key prefix in
//! front. Which arguments are keys is not known from the file: the server says (see
//! `executor::templates`), and [`Custom::set_keys`] records it before the first phase.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngExt;

use super::{Command, Env, Prepared, RoundTrip, Weighted, WorkerState};
use crate::keys::{Rng, ValueMaker, push_decimal};
use crate::scenario::model::CustomCommands;
use crate::scenario::template::{ArgTemplate, Piece, Template};

/// Runtime form of a `custom` workload.
pub struct Custom {
    templates: Vec<Compiled>,
    choose: Weighted,
    sequence: bool,
    transaction: bool,
    depth: usize,
    /// The round trip's operation when it carries more than one command.
    batch_op: Option<u16>,
    prefix: Vec<u8>,
    /// Script SHA1s by name, once loaded.
    shas: HashMap<String, Vec<u8>>,
}

/// One template ready to render.
struct Compiled {
    op: u16,
    custom: u16,
    /// The command's name as a RESP bulk string, encoded once (as built-in names are).
    bulk_name: Vec<u8>,
    args: Vec<ArgTemplate>,
    /// Per template argument: whether it is a key (gets the prefix). Set by [`Custom::set_keys`].
    is_key: Vec<bool>,
    /// One value maker per `{data:N}` piece, in order of appearance.
    data: Vec<ValueMaker>,
    wire_len: usize,
}

/// Where a template's keys are: wire positions (1 = the first argument after the name).
pub type KeyPositions = Vec<usize>;

impl Custom {
    /// From the checked templates; keys are unknown until [`Custom::set_keys`].
    pub fn new(spec: &CustomCommands) -> Custom {
        let n = spec.templates.len() as u16;
        let templates = spec
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| Compiled {
                op: i as u16,
                custom: crate::command::custom_id(&t.stats_name),
                bulk_name: crate::resp::bulk_string(&t.command),
                args: t.args.clone(),
                is_key: vec![false; t.args.len()],
                data: t
                    .args
                    .iter()
                    .flat_map(|a| match a {
                        ArgTemplate::Pieces(p) => p.clone(),
                        ArgTemplate::Range(..) => Vec::new(),
                    })
                    .filter_map(|p| match p {
                        Piece::Data(Some(n)) => Some(ValueMaker::new((n, n))),
                        _ => None,
                    })
                    .collect(),
                wire_len: t.wire_len(),
            })
            .collect();
        let batch = spec.transaction || spec.sequence || spec.depth > 1;
        Custom {
            templates,
            choose: Weighted::new(spec.templates.iter().map(|t| t.weight)),
            sequence: spec.sequence,
            transaction: spec.transaction,
            depth: spec.depth.max(1) as usize,
            batch_op: batch.then_some(n),
            prefix: spec.key_prefix.as_bytes().to_vec(),
            shas: HashMap::new(),
        }
    }

    /// Records the loaded scripts' SHA1s by name (`{script:NAME}` renders them from now on).
    pub fn set_scripts(&mut self, shas: HashMap<String, String>) {
        self.shas = shas.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    }

    /// Records where each template's keys are, as the server said: wire positions, templates in
    /// file order. Key arguments get the prefix from now on.
    pub fn set_keys(&mut self, keys: &[KeyPositions]) {
        for (c, positions) in self.templates.iter_mut().zip(keys) {
            let mut wire = 1;
            for (i, a) in c.args.iter().enumerate() {
                c.is_key[i] = positions.iter().any(|p| (wire..wire + a.width()).contains(p));
                wire += a.width();
            }
        }
    }

    /// Writes one round trip.
    pub fn prepare(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip) -> Prepared {
        if self.transaction {
            rt.push_aux(Command::Multi, self.batch_op.unwrap_or(0), 0);
        }
        let first = st.picker.next(rng);
        let mut slot: Option<u16> = None;
        let mut op = 0;
        for i in 0..self.depth {
            let key = if i == 0 { first } else { env.batch_index(first, st.picker.next(rng)) };
            if self.sequence {
                for t in &self.templates {
                    self.write(t, env, st, rng, rt, key, &mut slot);
                }
            } else {
                let t = &self.templates[self.choose.pick(rng)];
                op = t.op;
                self.write(t, env, st, rng, rt, key, &mut slot);
            }
        }
        if self.transaction {
            rt.push_aux(Command::Exec, self.batch_op.unwrap_or(0), 0);
        }
        rt.set_slot(slot);
        Prepared { op: self.batch_op.unwrap_or(op), ..Prepared::default() }
    }

    /// Renders template `t` with key index `key`; the first key argument's slot becomes the round
    /// trip's (templates keep their keys in one slot, which `executor::templates` checks).
    #[allow(clippy::too_many_arguments)]
    fn write(&self, t: &Compiled, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip, key: u64, slot: &mut Option<u16>) {
        // Arguments are rendered into `st.value`, one after the other, their ends in `st.member`
        // (as little-endian u32s): no allocation once the buffers have grown.
        st.value.clear();
        st.member.clear();
        let mut data = t.data.iter();
        for (a, is_key) in t.args.iter().zip(&t.is_key) {
            match a {
                ArgTemplate::Range(n, w) => {
                    let start = rng.random_range(0..*n);
                    push_decimal(&mut st.value, start);
                    end_arg(st);
                    push_decimal(&mut st.value, start.saturating_add(*w));
                    end_arg(st);
                }
                ArgTemplate::Pieces(pieces) => {
                    let from = st.value.len();
                    if *is_key {
                        st.value.extend_from_slice(&self.prefix);
                    }
                    for p in pieces {
                        self.piece(p, env, st, rng, key, &mut data);
                    }
                    if *is_key && slot.is_none() {
                        *slot = Some(crate::slots::slot(&st.value[from..]));
                    }
                    end_arg(st);
                }
            }
        }
        let mut w = rt.push_custom_named(t.custom, t.op, &t.bulk_name, t.wire_len - 1);
        let mut from = 0;
        for end in st.member.chunks_exact(4) {
            let end = u32::from_le_bytes([end[0], end[1], end[2], end[3]]) as usize;
            w = w.arg(&st.value[from..end]);
            from = end;
        }
    }

    /// Appends one placeholder's text to the argument being rendered.
    fn piece(&self, p: &Piece, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng, key: u64, data: &mut std::slice::Iter<'_, ValueMaker>) {
        match p {
            Piece::Literal(b) => st.value.extend_from_slice(b),
            Piece::Key => push_decimal(&mut st.value, key),
            Piece::Tag => {
                st.value.push(b'{');
                push_decimal(&mut st.value, env.tag_block.map_or(key, |b| key / b));
                st.value.push(b'}');
            }
            Piece::Data(size) => {
                st.seq += 1;
                let stamp = ((st.worker as u64) << 40) | st.seq;
                // The maker clears what it writes into: render into the `key` scratch, then append.
                match size.and_then(|_| data.next()) {
                    Some(maker) => maker.make(rng, stamp, &mut st.key),
                    None => env.values.make(rng, stamp, &mut st.key),
                }
                st.value.extend_from_slice(&st.key);
            }
            Piece::Rand(n) => push_decimal(&mut st.value, rng.random_range(0..*n)),
            Piece::Seq(n) => {
                // Workers stripe one sequence: together they send 0, 1, 2, … in turn.
                let v = st.seq_custom.wrapping_mul(st.writers.max(1) as u64).wrapping_add(st.worker as u64) % n;
                st.seq_custom += 1;
                push_decimal(&mut st.value, v);
            }
            Piece::NowMicros => {
                let us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
                push_decimal(&mut st.value, us);
            }
            Piece::Script(name) => st.value.extend_from_slice(self.shas.get(name).map_or(&b"0000000000000000000000000000000000000000"[..], Vec::as_slice)),
        }
    }

    /// Renders each template once (keys not yet known, scripts as loaded): what the server is
    /// asked to locate keys in. Arguments in file order, the name first.
    pub fn sample(&self, env: &Env<'_>, st: &mut WorkerState, rng: &mut Rng) -> Vec<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for t in &self.templates {
            let mut rt = RoundTrip::new();
            let mut slot = None;
            let key = st.picker.next(rng);
            self.write(t, env, st, rng, &mut rt, key, &mut slot);
            out.push(rt.args(0).into_iter().map(<[u8]>::to_vec).collect());
        }
        out
    }
}

/// Marks the end of the argument rendered so far.
fn end_arg(st: &mut WorkerState) {
    st.member.extend_from_slice(&(st.value.len() as u32).to_le_bytes());
}

/// The key positions the file names for a template, if it names them.
pub fn key_positions_named(t: &Template) -> Option<KeyPositions> {
    t.keys.as_ref().map(|k| k.iter().map(|p| *p as usize).collect())
}
