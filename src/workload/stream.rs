//! `stream`: workers XADD through the pool (the scheduled operation); consumers of one group read
//! (XREADGROUP), acknowledge (XACK) and claim what others left pending (XAUTOCLAIM). Every entry
//! carries this run's nonce, its producer, sequence number and send time, and a checksum, so each
//! acknowledged XADD is accounted for at the end: delivered, trimmed by MAXLEN, or lost; an entry
//! delivered twice is a duplicate, one whose checksum fails is corrupted. This module is encode,
//! decode and bookkeeping; the consumers' I/O is the executor's (`executor::streams`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt;

use super::{Command, Prepared, RoundTrip, WorkerState};
use crate::keys::{Rng, digest, push_decimal};
use crate::resp::Value;
use crate::scenario::raw::StreamSpec;

/// Operation id of deliveries (after XADD).
pub const RECEIVE: u16 = 1;
const MAGIC: &[u8] = b"rtst:";
/// Bits of a producer's sequence number (the producer is the rest): `(producer << 40) | n`.
const SEQ_BITS: u32 = 40;
/// Most sequence numbers one producer's delivery bitmap covers (16 MiB of bits): beyond it
/// entries are delivered but not checked, and the figures say so.
const MAX_SEQ_TRACKED: u64 = 1 << 27;
/// Most acknowledged entries awaiting delivery one stream remembers; beyond it they are not
/// checked, and the figures say so.
const MAX_UNDELIVERED: usize = 2_000_000;

/// A stream entry id, `ms-seq`.
pub type EntryId = (u64, u64);

/// An entry as a consumer received it: its id, its payload (`d`) and its checksum (`s`).
pub type Entry = (Vec<u8>, Vec<u8>, Vec<u8>);

/// What happened to one stream's entries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StreamStats {
    /// The workload.
    pub workload: String,
    /// The stream's key.
    pub stream: String,
    /// Entries added: XADDs the server acknowledged.
    pub produced: u64,
    /// XADDs that failed (not acknowledged; the server may still have added some).
    pub add_failed: u64,
    /// Distinct entries of this run delivered to a consumer.
    pub delivered: u64,
    /// Entries acknowledged (XACK) by the consumers.
    pub acked: u64,
    /// Entries a consumer took over from another with XAUTOCLAIM.
    pub claimed: u64,
    /// Deliveries of an entry already delivered (claims of entries read but not acknowledged).
    pub duplicated: u64,
    /// Acknowledged entries never delivered, and not trimmed by MAXLEN.
    pub lost: u64,
    /// Acknowledged entries trimmed by MAXLEN before any consumer read them.
    pub trimmed: u64,
    /// Entries whose checksum did not match their payload.
    pub corrupted: u64,
    /// Entries of the group not acknowledged at the end (XINFO GROUPS `pending`).
    pub pending: u64,
    /// Entries not yet delivered to the group at the end (XINFO GROUPS `lag`).
    pub lag: u64,
    /// Whether more entries were produced than could be remembered: some were not checked, and
    /// `lost` covers only those that were.
    #[serde(default)]
    pub unchecked: bool,
    /// The group's `pending` and `lag` each second of the run (XINFO GROUPS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<StreamPoint>,
}

/// One sample of a stream's consumer group.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StreamPoint {
    /// Seconds since the start of the run.
    pub t: f64,
    /// Entries read and not acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group.
    pub lag: u64,
}

/// Most samples kept per stream (a day at one a second); later ones are not kept.
const MAX_SAMPLES: usize = 86_400;

#[derive(Default)]
struct Book {
    /// Per producer: a bit per sequence number delivered at least once.
    delivered: HashMap<u64, Vec<u64>>,
    /// Acknowledged entries not yet delivered, by sequence number, with their ids.
    undelivered: HashMap<u64, EntryId>,
    stats: StreamStats,
}

impl Book {
    /// Marks `seq` delivered; whether it was already.
    fn deliver(&mut self, seq: u64) -> Option<bool> {
        let (producer, n) = (seq >> SEQ_BITS, seq & ((1 << SEQ_BITS) - 1));
        if n >= MAX_SEQ_TRACKED {
            self.stats.unchecked = true;
            return None;
        }
        let bits = self.delivered.entry(producer).or_default();
        let word = (n / 64) as usize;
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let mask = 1u64 << (n % 64);
        let was = bits[word] & mask != 0;
        bits[word] |= mask;
        Some(was)
    }

    fn was_delivered(&self, seq: u64) -> bool {
        let (producer, n) = (seq >> SEQ_BITS, seq & ((1 << SEQ_BITS) - 1));
        self.delivered.get(&producer).and_then(|b| b.get((n / 64) as usize)).is_some_and(|w| w & (1 << (n % 64)) != 0)
    }
}

/// Shared state of a stream workload.
pub struct Stream {
    /// The stream keys.
    pub keys: Vec<Vec<u8>>,
    /// The consumer group.
    pub group: Vec<u8>,
    maxlen: Option<u64>,
    message_size: usize,
    /// Consumer tasks per process.
    pub consumers: usize,
    count: u32,
    block: Duration,
    /// How long an entry stays pending before it is claimed.
    pub claim_after: Duration,
    /// How long a consumer works on a batch before acknowledging it.
    pub process_time: Duration,
    name: String,
    nonce: Vec<u8>,
    books: Vec<Mutex<Book>>,
    /// Per stream: the last sample's (pending, lag), and every sample.
    samples: Vec<Mutex<(u64, u64, Vec<StreamPoint>)>>,
}

impl Stream {
    /// From the scenario's options; `prefix` is the workload's key prefix, `name` its name;
    /// `nonce` tells this run's entries from any others in the stream.
    pub fn new(spec: &StreamSpec, prefix: &str, name: &str, nonce: u64) -> Stream {
        Stream {
            keys: (0..spec.streams).map(|i| format!("{prefix}stream:{i}").into_bytes()).collect(),
            group: spec.group.as_bytes().to_vec(),
            maxlen: spec.maxlen,
            message_size: spec.message_size.0 as usize,
            consumers: spec.consumers as usize,
            count: spec.count,
            block: spec.block.get(),
            claim_after: spec.claim_after.get(),
            process_time: spec.process_time.map(|d| d.get()).unwrap_or_default(),
            name: name.to_owned(),
            nonce: format!("{nonce:016x}").into_bytes(),
            books: (0..spec.streams).map(|_| Mutex::new(Book::default())).collect(),
            samples: (0..spec.streams).map(|_| Mutex::new((0, 0, Vec::new()))).collect(),
        }
    }

    /// Writes an XADD of the next entry; `now_nanos` is the send time on the run clock.
    pub fn prepare(&self, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip, now_nanos: u64) -> Prepared {
        let stream = rng.random_range(0..self.keys.len());
        st.seq += 1;
        let seq = ((st.worker as u64) << SEQ_BITS) | (st.seq & ((1 << SEQ_BITS) - 1));
        let payload = &mut st.value;
        payload.clear();
        payload.extend_from_slice(MAGIC);
        payload.extend_from_slice(&self.nonce);
        payload.push(b':');
        push_decimal(payload, seq);
        payload.push(b':');
        push_decimal(payload, now_nanos);
        payload.push(b':');
        while payload.len() < self.message_size {
            payload.push(b'x');
        }
        let sum = checksum(payload);
        let w = match self.maxlen {
            Some(n) => rt.push(Command::Xadd, 0, 9).arg(&self.keys[stream]).arg(b"MAXLEN").arg(b"~").int(n as i64),
            None => rt.push(Command::Xadd, 0, 6).arg(&self.keys[stream]),
        };
        w.arg(b"*").arg(b"d").arg(payload).arg(b"s").arg(&sum);
        rt.set_slot(Some(crate::slots::slot(&self.keys[stream])));
        Prepared { op: 0, tag: stream as u32, seq, ..Prepared::default() }
    }

    /// Counts an XADD: acknowledged (with the id the server gave it) or failed.
    pub fn added(&self, p: &Prepared, reply: Option<&Value>) {
        let Some(book) = self.books.get(p.tag as usize) else { return };
        let mut b = book.lock().expect("stream book");
        match reply.and_then(|v| v.as_bytes()).and_then(parse_id) {
            Some(id) => {
                b.stats.produced += 1;
                if !b.was_delivered(p.seq) {
                    if b.undelivered.len() < MAX_UNDELIVERED {
                        b.undelivered.insert(p.seq, id);
                    } else {
                        b.stats.unchecked = true;
                    }
                }
            }
            None => b.stats.add_failed += 1,
        }
    }

    /// XREADGROUP for consumer `name` on stream `stream` (new entries only).
    pub fn read(&self, rt: &mut RoundTrip, stream: usize, name: &[u8]) {
        rt.clear();
        rt.push(Command::Xreadgroup, RECEIVE, 10)
            .arg(b"GROUP")
            .arg(&self.group)
            .arg(name)
            .arg(b"COUNT")
            .int(i64::from(self.count))
            .arg(b"BLOCK")
            .int(self.block.as_millis().max(1) as i64)
            .arg(b"STREAMS")
            .arg(&self.keys[stream])
            .arg(b">");
        rt.set_slot(Some(crate::slots::slot(&self.keys[stream])));
    }

    /// XAUTOCLAIM for consumer `name`: entries pending longer than `claim_after`, from `start`.
    pub fn claim(&self, rt: &mut RoundTrip, stream: usize, name: &[u8], start: &[u8]) {
        rt.clear();
        rt.push(Command::Xautoclaim, RECEIVE, 7)
            .arg(&self.keys[stream])
            .arg(&self.group)
            .arg(name)
            .int(self.claim_after.as_millis() as i64)
            .arg(start)
            .arg(b"COUNT")
            .int(i64::from(self.count));
        rt.set_slot(Some(crate::slots::slot(&self.keys[stream])));
    }

    /// XACK of `ids` on stream `stream`.
    pub fn ack(&self, rt: &mut RoundTrip, stream: usize, ids: &[Vec<u8>]) {
        rt.clear();
        let mut w = rt.push(Command::Xack, RECEIVE, 2 + ids.len()).arg(&self.keys[stream]).arg(&self.group);
        for id in ids {
            w = w.arg(id);
        }
        rt.set_slot(Some(crate::slots::slot(&self.keys[stream])));
    }

    /// Books what a consumer received: each entry of this run is delivered once, again (a
    /// duplicate) or corrupted; returns each delivery's latency from its send time (`now_nanos`
    /// on the run clock) and the ids to acknowledge. `deleted` are ids XAUTOCLAIM found trimmed.
    pub fn received(&self, stream: usize, entries: &[Entry], claimed: bool, deleted: &[Vec<u8>], now_nanos: u64) -> Vec<u64> {
        let Some(book) = self.books.get(stream) else { return Vec::new() };
        let mut b = book.lock().expect("stream book");
        let mut latencies = Vec::with_capacity(entries.len());
        for (_, payload, sum) in entries {
            let Some((seq, sent)) = self.header(payload) else { continue };
            if checksum(payload).as_slice() != sum.as_slice() {
                b.stats.corrupted += 1;
            }
            if claimed {
                b.stats.claimed += 1;
            }
            match b.deliver(seq) {
                Some(true) => b.stats.duplicated += 1,
                Some(false) => {
                    b.stats.delivered += 1;
                    b.undelivered.remove(&seq);
                }
                None => {}
            }
            latencies.push(now_nanos.saturating_sub(sent) / 1_000);
        }
        for id in deleted.iter().filter_map(|d| parse_id(d)) {
            let gone: Vec<u64> = b.undelivered.iter().filter(|(_, e)| **e == id).map(|(s, _)| *s).collect();
            for s in gone {
                b.undelivered.remove(&s);
                b.stats.trimmed += 1;
            }
        }
        latencies
    }

    /// Counts entries acknowledged by a consumer.
    pub fn acknowledged(&self, stream: usize, n: u64) {
        if let Some(book) = self.books.get(stream) {
            book.lock().expect("stream book").stats.acked += n;
        }
    }

    /// Records a sample of stream `stream`'s group at `t` seconds into the run.
    pub fn sampled(&self, stream: usize, t: f64, pending: u64, lag: u64) {
        if let Some(m) = self.samples.get(stream) {
            let mut m = m.lock().expect("stream samples");
            m.0 = pending;
            m.1 = lag;
            if m.2.len() < MAX_SAMPLES {
                m.2.push(StreamPoint { t: (t * 1000.0).round() / 1000.0, pending, lag });
            }
        }
    }

    /// Every stream's figures now, for exporters.
    pub fn live(&self) -> Vec<crate::live::StreamLive> {
        self.books
            .iter()
            .zip(&self.samples)
            .enumerate()
            .map(|(i, (b, m))| {
                let st = b.lock().expect("stream book").stats.clone();
                let (pending, lag, _) = *m.lock().expect("stream samples");
                crate::live::StreamLive {
                    workload: self.name.clone(),
                    stream: String::from_utf8_lossy(&self.keys[i]).into_owned(),
                    produced: st.produced,
                    delivered: st.delivered,
                    claimed: st.claimed,
                    duplicated: st.duplicated,
                    pending,
                    lag,
                }
            })
            .collect()
    }

    /// Entries acknowledged by the server and not yet delivered or trimmed, over every stream.
    pub fn outstanding(&self) -> usize {
        self.books.iter().map(|b| b.lock().expect("stream book").undelivered.len()).sum()
    }

    /// MAXLEN trimmed what comes before `first` (the stream's first entry; `None`: the stream is
    /// empty, so everything up to `last` is gone): entries not yet delivered there are trimmed.
    pub fn trimmed_before(&self, stream: usize, first: Option<EntryId>, last: EntryId) {
        let Some(book) = self.books.get(stream) else { return };
        let mut b = book.lock().expect("stream book");
        let gone: Vec<u64> = b.undelivered.iter().filter(|(_, id)| first.map_or(**id <= last, |f| **id < f)).map(|(s, _)| *s).collect();
        for s in gone {
            b.undelivered.remove(&s);
            b.stats.trimmed += 1;
        }
    }

    /// Every stream's figures; `ends` are each stream's (pending, lag) at the end.
    pub fn results(&self, ends: &[(u64, u64)]) -> Vec<StreamStats> {
        self.books
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let b = b.lock().expect("stream book");
                let mut s = b.stats.clone();
                s.workload = self.name.clone();
                s.stream = String::from_utf8_lossy(&self.keys[i]).into_owned();
                s.lost = b.undelivered.len() as u64;
                (s.pending, s.lag) = ends.get(i).copied().unwrap_or_default();
                s.series = self.samples.get(i).map(|m| m.lock().expect("stream samples").2.clone()).unwrap_or_default();
                s
            })
            .collect()
    }

    /// An entry of this run: its sequence number and send time.
    fn header(&self, payload: &[u8]) -> Option<(u64, u64)> {
        let rest = payload.strip_prefix(MAGIC)?.strip_prefix(self.nonce.as_slice())?.strip_prefix(b":")?;
        let mut parts = rest.splitn(3, |b| *b == b':');
        let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let sent = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        Some((seq, sent))
    }
}

/// A payload's checksum as sent in the entry's `s` field (16 hex digits).
fn checksum(payload: &[u8]) -> [u8; 16] {
    let d = digest(payload);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    std::array::from_fn(|i| HEX[((d >> (60 - 4 * i)) & 0xf) as usize])
}

/// `ms-seq` as numbers.
pub fn parse_id(b: &[u8]) -> Option<EntryId> {
    let s = std::str::from_utf8(b).ok()?;
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The entries of an XREADGROUP reply (RESP2 array or RESP3 map) or of XAUTOCLAIM's second
/// element: (id, payload `d`, checksum `s`). Entries without fields (deleted) are left out.
pub fn entries(v: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    let list = |items: &[Value], out: &mut Vec<Entry>| {
        for e in items {
            let Value::Array(pair) = e else { continue };
            let (Some(id), Some(Value::Array(fields))) = (pair.first().and_then(Value::as_bytes), pair.get(1)) else { continue };
            let field = |name: &[u8]| {
                fields.chunks(2).find(|kv| kv.first().and_then(Value::as_bytes) == Some(name)).and_then(|kv| kv.get(1)?.as_bytes().map(<[u8]>::to_vec))
            };
            out.push((id.to_vec(), field(b"d").unwrap_or_default(), field(b"s").unwrap_or_default()));
        }
    };
    match v {
        // XREADGROUP, RESP2: [[key, [entries]]].
        Value::Array(streams) => {
            for s in streams {
                if let Value::Array(kv) = s
                    && let Some(Value::Array(items)) = kv.get(1)
                {
                    list(items, &mut out);
                }
            }
        }
        // XREADGROUP, RESP3: {key: [entries]}.
        Value::Map(pairs) => {
            for (_, items) in pairs {
                if let Value::Array(items) = items {
                    list(items, &mut out);
                }
            }
        }
        _ => {}
    }
    out
}

/// What one XAUTOCLAIM returned.
pub struct Claimed {
    /// Where the next pass starts (`0-0`: the pass is complete).
    pub next: Vec<u8>,
    /// The entries now this consumer's.
    pub entries: Vec<Entry>,
    /// Ids pending but gone from the stream (trimmed).
    pub deleted: Vec<Vec<u8>>,
}

/// XAUTOCLAIM's reply: the next start, the claimed entries, and the ids found deleted.
pub fn claimed(v: &Value) -> Option<Claimed> {
    let Value::Array(parts) = v else { return None };
    let next = parts.first()?.as_bytes()?.to_vec();
    let mut got = Vec::new();
    if let Some(Value::Array(items)) = parts.get(1) {
        // As one stream of XREADGROUP's RESP2 reply.
        got = entries(&Value::Array(vec![Value::Array(vec![Value::Nil, Value::Array(items.clone())])]));
    }
    let deleted = match parts.get(2) {
        Some(Value::Array(ids)) => ids.iter().filter_map(|i| i.as_bytes().map(<[u8]>::to_vec)).collect(),
        _ => Vec::new(),
    };
    Some(Claimed { next, entries: got, deleted })
}

/// A field of an XINFO reply (RESP2 flat array or RESP3 map).
pub fn info_field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Array(items) => items.chunks(2).find(|kv| kv.first().and_then(Value::as_bytes) == Some(name.as_bytes())).and_then(|kv| kv.get(1)),
        Value::Map(pairs) => pairs.iter().find(|(k, _)| k.as_bytes() == Some(name.as_bytes())).map(|(_, v)| v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> StreamSpec {
        serde_json::from_value(serde_json::json!({"streams": 2, "maxlen": 100, "consumers": 2, "message_size": 64})).unwrap()
    }

    #[test]
    fn every_entry_is_delivered_once_duplicated_trimmed_or_lost() {
        let s = Stream::new(&spec(), "p:", "w", 7);
        let ks = crate::scenario::model::Keyspace { prefix: "p:".into(), keys: 1, distribution: Default::default(), value_size: (1, 1), ttl: None };
        let mut st = WorkerState::new(&ks, 3, 4);
        let mut rng = crate::keys::worker_rng(1, 3);
        let mut rt = RoundTrip::new();
        let mut sent = Vec::new();
        for i in 0..4u64 {
            rt.clear();
            let p = s.prepare(&mut st, &mut rng, &mut rt, 1_000_000);
            let args = rt.args(0);
            assert_eq!(&args[..4], [&b"XADD"[..], &s.keys[p.tag as usize], b"MAXLEN", b"~"]);
            assert_eq!(args[7].len(), 64);
            let id = format!("{}-0", 10 + i);
            s.added(&p, Some(&Value::Bulk(id.clone().into_bytes())));
            sent.push((p.tag as usize, id.into_bytes(), args[7].to_vec(), args[9].to_vec()));
        }
        rt.clear();
        let failed = s.prepare(&mut st, &mut rng, &mut rt, 0);
        s.added(&failed, None);
        // The first delivered twice, the second corrupted, the third trimmed, the fourth never seen.
        let (stream, id, payload, sum) = &sent[0];
        let one = vec![(id.clone(), payload.clone(), sum.clone())];
        assert_eq!(s.received(*stream, &one, false, &[], 3_000_000), vec![2_000]);
        s.received(*stream, &one, true, &[], 3_000_000);
        let (stream1, id1, payload1, _) = &sent[1];
        s.received(*stream1, &[(id1.clone(), payload1.clone(), b"0000000000000000".to_vec())], false, &[], 0);
        let (stream2, id2, _, _) = &sent[2];
        s.received(*stream2, &[], true, std::slice::from_ref(id2), 0);
        let foreign = Stream::new(&spec(), "p:", "w", 8);
        assert!(foreign.header(payload).is_none(), "another run's entry is not this run's");
        let r = s.results(&[(0, 0), (0, 0)]);
        let total = |f: fn(&StreamStats) -> u64| r.iter().map(f).sum::<u64>();
        assert_eq!(total(|x| x.produced), 4);
        assert_eq!(total(|x| x.add_failed), 1);
        assert_eq!(total(|x| x.delivered), 2);
        assert_eq!(total(|x| x.duplicated), 1);
        assert_eq!(total(|x| x.claimed), 1);
        assert_eq!(total(|x| x.corrupted), 1);
        assert_eq!(total(|x| x.trimmed), 1);
        assert_eq!(total(|x| x.lost), 1);
    }

    #[test]
    fn replies_are_read_in_both_protocols() {
        let entry = |id: &str| {
            Value::Array(vec![
                Value::Bulk(id.into()),
                Value::Array(vec![Value::Bulk(b"d".to_vec()), Value::Bulk(b"x".to_vec()), Value::Bulk(b"s".to_vec()), Value::Bulk(b"y".to_vec())]),
            ])
        };
        let resp2 = Value::Array(vec![Value::Array(vec![Value::Bulk(b"k".to_vec()), Value::Array(vec![entry("1-0"), entry("2-0")])])]);
        let resp3 = Value::Map(vec![(Value::Bulk(b"k".to_vec()), Value::Array(vec![entry("1-0")]))]);
        assert_eq!(entries(&resp2).len(), 2);
        assert_eq!(entries(&resp3), vec![(b"1-0".to_vec(), b"x".to_vec(), b"y".to_vec())]);
        assert!(entries(&Value::Nil).is_empty());
        let auto = Value::Array(vec![Value::Bulk(b"0-0".to_vec()), Value::Array(vec![entry("3-1")]), Value::Array(vec![Value::Bulk(b"4-0".to_vec())])]);
        let c = claimed(&auto).unwrap();
        assert_eq!((c.next.as_slice(), c.entries.len(), c.deleted), (&b"0-0"[..], 1, vec![b"4-0".to_vec()]));
        assert_eq!(parse_id(b"1700000000000-12"), Some((1_700_000_000_000, 12)));
        let info = Value::Array(vec![Value::Bulk(b"lag".to_vec()), Value::Int(3)]);
        assert_eq!(info_field(&info, "lag"), Some(&Value::Int(3)));
    }
}
