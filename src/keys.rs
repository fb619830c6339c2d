//! Key and value generation: which key index to touch next (uniform, sequential, zipf, gaussian)
//! and the bytes to write. Seeded per worker so that runs are reproducible and workers differ.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution as _, Normal, Zipf};

use crate::resp::CommandWriter;
use crate::scenario::model::{Distribution, Keyspace};

/// A worker's random number generator.
pub type Rng = SmallRng;

/// A generator seeded from the worker id (and a run seed), distinct per worker.
pub fn worker_rng(seed: u64, worker: usize) -> Rng {
    SmallRng::seed_from_u64(seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Picks key indexes in `0..keys` following a distribution.
#[derive(Debug, Clone)]
pub struct KeyPicker {
    keys: u64,
    kind: Pick,
    next_sequential: u64,
}

#[derive(Debug, Clone)]
enum Pick {
    Uniform,
    Sequential,
    Zipf(Zipf<f64>),
    Gaussian(Normal<f64>),
}

impl KeyPicker {
    /// A picker for a keyspace; `worker` offsets sequential walks so workers do not collide.
    pub fn new(ks: &Keyspace, worker: usize) -> KeyPicker {
        let keys = ks.keys.max(1);
        let kind = match &ks.distribution {
            Distribution::Uniform => Pick::Uniform,
            Distribution::Sequential => Pick::Sequential,
            // Validation guarantees n ≥ 1 and a finite exponent; fall back to uniform rather than panic.
            Distribution::Zipf { exponent } => Zipf::new(keys as f64, *exponent).map_or(Pick::Uniform, Pick::Zipf),
            Distribution::Gaussian { mean, stddev } => Normal::new(mean * keys as f64, (stddev * keys as f64).max(1e-9)).map_or(Pick::Uniform, Pick::Gaussian),
        };
        KeyPicker { keys, kind, next_sequential: (worker as u64).wrapping_mul(7919) % keys }
    }

    /// The next key index.
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match &self.kind {
            Pick::Uniform => rng.random_range(0..self.keys),
            Pick::Sequential => {
                let k = self.next_sequential;
                self.next_sequential = (k + 1) % self.keys;
                k
            }
            // Zipf yields ranks 1..=n; rank 1 is the hottest key.
            Pick::Zipf(z) => (z.sample(rng) as u64).saturating_sub(1).min(self.keys - 1),
            Pick::Gaussian(n) => n.sample(rng).round().clamp(0.0, (self.keys - 1) as f64) as u64,
        }
    }

    /// Number of keys.
    pub fn keys(&self) -> u64 {
        self.keys
    }
}

/// Writes `prefix` followed by the decimal `index` into `out` (cleared first).
pub fn key_into(out: &mut Vec<u8>, prefix: &[u8], index: u64) {
    out.clear();
    out.extend_from_slice(prefix);
    push_decimal(out, index);
}

pub use crate::resp::push_decimal;

/// Produces values of the configured size; each value starts with a unique stamp so that
/// a later read can tell which write it sees.
#[derive(Debug, Clone)]
pub struct ValueMaker {
    min: usize,
    max: usize,
    filler: Vec<u8>,
}

impl ValueMaker {
    /// Values between `min` and `max` bytes.
    pub fn new((min, max): (u64, u64)) -> ValueMaker {
        let max = max as usize;
        ValueMaker { min: min as usize, max, filler: (0..max).map(|i| b'a' + (i % 26) as u8).collect() }
    }

    /// Writes a value stamped with `stamp` into `out` (cleared first).
    pub fn make(&self, rng: &mut Rng, stamp: u64, out: &mut Vec<u8>) {
        let (hex, take, rest) = self.parts(rng, stamp);
        out.clear();
        out.extend_from_slice(&hex[..take]);
        out.extend_from_slice(rest);
    }

    /// Appends a value stamped with `stamp` as the next argument of `w`, written in place: the
    /// same bytes as [`ValueMaker::make`] with the same `rng`, without the copy through a buffer.
    pub fn arg<'w>(&self, w: CommandWriter<'w>, rng: &mut Rng, stamp: u64) -> CommandWriter<'w> {
        let (hex, take, rest) = self.parts(rng, stamp);
        w.arg_joined(&hex, take, rest)
    }

    /// The value's stamp (hex digits, of which the first `take` are used) and filler.
    fn parts(&self, rng: &mut Rng, stamp: u64) -> ([u8; 16], usize, &[u8]) {
        let len = if self.min == self.max { self.min } else { rng.random_range(self.min..=self.max) };
        let take = len.min(16);
        (hex16(stamp), take, &self.filler[..len - take])
    }
}

/// `n` as 16 lower-case hex digits, most significant first: every nibble spread into a byte of
/// a `u128` and made a digit at once (a byte per step was a twentieth of a SET's instructions).
fn hex16(n: u64) -> [u8; 16] {
    const LOW_32: u128 = 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    const LOW_16: u128 = 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    const LOW_8: u128 = 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    const LOW_4: u128 = 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    let x = u128::from(n);
    // Byte i (from the least significant) ends up holding nibble i of `n`.
    let x = ((x << 32) | x) & LOW_32;
    let x = ((x << 16) | x) & LOW_16;
    let x = ((x << 8) | x) & LOW_8;
    let x = ((x << 4) | x) & LOW_4;
    // 0–9 become '0'–'9'; 10–15 (whose byte plus 6 reaches 16) also get 'a' - '0' - 10 = 39.
    let letters = ((x + 6 * ONES) >> 4) & ONES;
    (x + u128::from(b'0') * ONES + 39 * letters).to_be_bytes()
}

/// A cheap 64-bit digest of a value (FNV-1a), for remembering acknowledged writes.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(distribution: Distribution, keys: u64) -> Keyspace {
        Keyspace { prefix: "p:".into(), keys, distribution, value_size: (8, 8), ttl: None }
    }

    #[test]
    fn stamps_are_the_hex_digits_of_their_number() {
        let mut rng = worker_rng(7, 0);
        let edges = [0, 1, 9, 10, 15, 16, 0xa5, u64::MAX, u64::MAX - 1, 1 << 63, 0x0123_4567_89ab_cdef];
        for n in edges.into_iter().chain((0..10_000).map(|_| rand::RngExt::random::<u64>(&mut rng))) {
            assert_eq!(hex16(n), *format!("{n:016x}").as_bytes(), "{n:#x}");
        }
    }

    #[test]
    fn a_value_written_in_place_is_the_value_made() {
        for (min, max) in [(0, 0), (8, 8), (16, 16), (32, 32), (1, 100), (1000, 1000)] {
            let maker = ValueMaker::new((min, max));
            let (mut a, mut b) = (worker_rng(9, 1), worker_rng(9, 1));
            for stamp in [0u64, 1, 0xdead_beef, (7 << 40) | 12_345, u64::MAX] {
                let mut value = Vec::new();
                maker.make(&mut a, stamp, &mut value);
                assert!((min as usize..=max as usize).contains(&value.len()));
                let mut spelt = Vec::new();
                CommandWriter::new(&mut spelt, 1).arg(&value);
                let mut in_place = Vec::new();
                maker.arg(CommandWriter::new(&mut in_place, 1), &mut b, stamp);
                assert_eq!(in_place, spelt, "{min}..{max} {stamp:x}");
            }
        }
        assert_eq!(&hex16(0x0123_4567_89ab_cdef), b"0123456789abcdef");
    }

    #[test]
    fn every_distribution_stays_in_range() {
        let mut rng = worker_rng(1, 0);
        for d in [Distribution::Uniform, Distribution::Sequential, Distribution::Zipf { exponent: 0.99 }, Distribution::Gaussian { mean: 0.5, stddev: 0.1 }] {
            let mut p = KeyPicker::new(&ks(d.clone(), 100), 3);
            for _ in 0..10_000 {
                assert!(p.next(&mut rng) < 100, "{d:?}");
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_sequential_walks() {
        let mut rng = worker_rng(7, 0);
        let mut p = KeyPicker::new(&ks(Distribution::Zipf { exponent: 1.2 }, 1000), 0);
        let hot = (0..10_000).filter(|_| p.next(&mut rng) < 10).count();
        assert!(hot > 5_000, "top 1% of keys got {hot} of 10000 picks");
        let mut s = KeyPicker::new(&ks(Distribution::Sequential, 5), 0);
        let walk: Vec<u64> = (0..7).map(|_| s.next(&mut rng)).collect();
        assert_eq!(walk, vec![0, 1, 2, 3, 4, 0, 1]);
    }

    #[test]
    fn values_have_the_configured_size_and_stamp() {
        let mut rng = worker_rng(1, 0);
        let m = ValueMaker::new((32, 64));
        let mut out = Vec::new();
        for i in 0..100 {
            m.make(&mut rng, i, &mut out);
            assert!((32..=64).contains(&out.len()));
            assert_eq!(&out[..16], format!("{i:016x}").as_bytes());
        }
        let mut k = Vec::new();
        key_into(&mut k, b"rt:", 42);
        assert_eq!(k, b"rt:42");
    }
}
