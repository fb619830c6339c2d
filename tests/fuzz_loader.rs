//! Fuzzing the scenario loader (issue 10): YAML and TOML files, `${VAR}` interpolation, `--set` and
//! `--target`, mutated from every shipped file with a dictionary of the tokens these formats and
//! our values care about. The loader must never panic and answer every input within 2 s (its own
//! caps bound memory: 1 MiB of text, 100 000 values, 64 levels).
//!
//! Runs for `FUZZ_SECONDS` (default 20) from seed `FUZZ_SEED` (default: the clock, printed); an
//! input that panics or takes too long is saved under the test's scratch folder and named.

mod common;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use redis_test::scenario::{Format, LoadOptions, SetOverride, Vars, load_text};

/// Tokens that matter to YAML, TOML, interpolation and our values.
const DICTIONARY: &[&str] = &[
    "${X}",
    "${X:-",
    "${X:-7}",
    "${UNSET}",
    "$$",
    "${",
    "}",
    "&a ",
    "*a",
    "<<: *a",
    "&b [1, *a]",
    "{",
    "}",
    "[",
    "]",
    "- ",
    ": ",
    "\n",
    "\n  ",
    "\t",
    "'",
    "\"",
    "!!binary ",
    "!!str ",
    "!!int ",
    "!custom ",
    "---\n",
    "...\n",
    "# ",
    "1e309",
    "-0",
    "99999999999999999999",
    "0x10",
    "0o7",
    "nan",
    ".inf",
    "-.inf",
    "true",
    "false",
    "yes",
    "n",
    "~",
    "null",
    "30s",
    "1h",
    "0ms",
    "1m30s",
    "999999h",
    "1.5",
    "1e300",
    "-1",
    "0",
    "\u{1b}[2J",
    "\u{0}",
    "é",
    "𝄞",
    "\r\n",
    "kind: list",
    "kind: pipeline",
    "kind: pubsub",
    "workers: ",
    "rate: ",
    "duration: ",
    "mix: ",
    "phase: ",
    "action: restart",
    "[[phases]]",
    "[workloads.w]",
    "[target]",
    "= ",
    "\"\"\"",
    "'''",
    "a.b.c = 1",
    "inf",
    "+inf",
    "2026-11-26T00:00:00Z",
    "{from: 1, to: 0}",
    "{zipf: {exponent: 0.99}}",
    "64KiB",
    "9999999999MiB",
    "redis://u:p@h:1/2",
    "rediss://",
    "local: cluster",
    "thresholds: [p99 < 1ms]",
    "expr: ",
    "workload: ",
    "ttl: ",
    "verify: true",
    "transaction: true",
    "??",
    "%",
    "@",
    "`",
];

fn seeds() -> Vec<(Format, String)> {
    let mut out = Vec::new();
    for dir in ["scenarios", "examples", "benches"] {
        for f in redis_test::scenario::files_in(&common::repo().join(dir)).unwrap() {
            out.push((Format::of(&f).unwrap(), std::fs::read_to_string(&f).unwrap()));
        }
    }
    out
}

fn char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(rng: &mut SmallRng, text: &str, seeds: &[(Format, String)]) -> String {
    let mut s = text.to_owned();
    for _ in 0..rng.random_range(1..6) {
        let len = s.len().max(1);
        let a = char_boundary(&s, rng.random_range(0..len));
        let b = char_boundary(&s, (a + rng.random_range(0..40)).min(s.len()));
        match rng.random_range(0..7) {
            0 => s.replace_range(a..b, DICTIONARY[rng.random_range(0..DICTIONARY.len())]),
            1 => s.insert_str(a, DICTIONARY[rng.random_range(0..DICTIONARY.len())]),
            2 => s.replace_range(a..b, ""),
            3 => {
                let chunk = s[a..b].to_owned();
                let at = char_boundary(&s, rng.random_range(0..len));
                s.insert_str(at, &chunk);
            }
            4 => {
                // Splice a piece of another seed in.
                let other = &seeds[rng.random_range(0..seeds.len())].1;
                let c = char_boundary(other, rng.random_range(0..other.len().max(1)));
                let d = char_boundary(other, (c + rng.random_range(0..200)).min(other.len()));
                s.insert_str(a, &other[c..d]);
            }
            5 => {
                // Repeat a line many times: big documents, many tables.
                let line_start = s[..a].rfind('\n').map_or(0, |i| i + 1);
                let line_end = s[a..].find('\n').map_or(s.len(), |i| a + i + 1);
                let line = s[line_start..line_end].to_owned();
                let times = rng.random_range(2..2000);
                s.insert_str(line_end, &line.repeat(times));
            }
            _ => {
                let c = char::from_u32(rng.random_range(0..0x11000)).unwrap_or('?');
                s.insert(a, c);
            }
        }
        if s.len() > 1_100_000 {
            s.truncate(char_boundary(&s, 1_100_000));
        }
    }
    s
}

fn random_token(rng: &mut SmallRng) -> String {
    (0..rng.random_range(0..4)).map(|_| DICTIONARY[rng.random_range(0..DICTIONARY.len())]).collect()
}

fn options(rng: &mut SmallRng) -> LoadOptions {
    let mut env = HashMap::new();
    for name in ["X", "W", "RATE", "PW"] {
        if rng.random_bool(0.7) {
            env.insert(name.to_owned(), random_token(rng));
        }
    }
    let paths = [
        "phases.0.rate",
        "phases.steady.workers",
        "target.url",
        "keyspace.prefix",
        "workloads.w.kind",
        "cleanup",
        "target.password",
        "metrics.otlp.headers",
        "faults.0.at",
        "a.b.c.d",
    ];
    let sets = (0..rng.random_range(0..3)).map(|_| format!("{}={}", paths[rng.random_range(0..paths.len())], random_token(rng))).collect();
    let target = rng.random_bool(0.1).then(|| format!("redis://{}@127.0.0.1:{}", random_token(rng), rng.random_range(0..70_000)));
    LoadOptions { vars: Vars { env, dotenv: HashMap::new() }, target, sets }
}

#[test]
fn the_loader_never_panics_and_answers_every_input_in_bounded_time() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("fuzzing the loader for {seconds} s from FUZZ_SEED={seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let seeds = seeds();
    let dir = common::scratch("fuzz-loader");
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut accepted) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    // Panics are caught and reported with their input; keep the default hook quiet meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    while Instant::now() < until && failure.is_none() {
        let (format, base) = &seeds[rng.random_range(0..seeds.len())];
        let text = mutate(&mut rng, base, &seeds);
        let opts = options(&mut rng);
        let name = if *format == Format::Toml { "fuzz.toml" } else { "fuzz.yaml" };
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let ok = load_text(name, text.clone(), *format, Path::new(name), &opts).is_ok();
            // The pieces on their own, too.
            for set in &opts.sets {
                if let Ok(s) = SetOverride::parse(set) {
                    let _ = s.path.len();
                }
            }
            let _ = redis_test::scenario::interpolate::expand(&text[..char_boundary(&text, 4096)], &opts.vars);
            ok
        }));
        let took = started.elapsed();
        if took > slowest {
            // Kept for a look: the slowest input so far.
            let _ = std::fs::write(dir.join(format!("slowest.{}", if *format == Format::Toml { "toml" } else { "yaml" })), &text);
            slowest = took;
        }
        runs += 1;
        match result {
            Ok(ok) => accepted += u64::from(ok),
            Err(p) => {
                failure = Some(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>().map_or_else(|| p.downcast_ref::<&str>().map_or("?", |s| s).to_owned(), Clone::clone)
                ))
            }
        }
        if took > Duration::from_secs(2) {
            failure = Some(format!("took {took:?}"));
        }
        if let Some(why) = &failure {
            let saved = dir.join(name);
            std::fs::write(&saved, &text).unwrap();
            std::fs::write(dir.join("options.txt"), format!("{:?}", (&opts.vars.env, &opts.sets, &opts.target))).unwrap();
            std::panic::set_hook(hook);
            panic!("input {} (options in options.txt) {why}; FUZZ_SEED={seed}", saved.display());
        }
    }
    std::panic::set_hook(hook);
    eprintln!("{runs} inputs, {accepted} valid, slowest {slowest:?}");
    assert!(runs > 100, "the fuzzer ran {runs} inputs only");
}
