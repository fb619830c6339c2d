//! Reading saved reports: they come from other machines (shards, a CI artifact store) and are
//! edited by people and scripts, so they are input like scenario files — bounded in size, checked
//! before use, refused with a clear error (exit 2) when their figures cannot be true, never a panic
//! or an allocation their bytes do not pay for.
//!
//! Versions: a report says which format wrote it (`report_version`). Reports of version 1 are read
//! and upgraded (their time series gain `ok`); reports of a version newer than this redis-test
//! knows are refused, saying which version wrote them — never misread.

use std::path::Path;

use super::{REPORT_VERSION, Report};

/// Largest report read back: a day-long run's report is a few megabytes.
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
/// Most phases, operation rows (all phases together), faults, steps per fault and gaps per fault.
const MAX_PHASES: usize = 10_000;
const MAX_ROWS: usize = 200_000;
const MAX_FAULTS: usize = 10_000;
const MAX_STEPS: usize = 10_000;
/// Most time-series points (a run of days at one per second merges its points; a report with more
/// was not written by redis-test).
const MAX_POINTS: usize = 1_000_000;
/// Most blocks per operation row (apply writes at most 20).
const MAX_BLOCKS: usize = 1_000;
/// Longest serialized histogram text (ours are a few kilobytes).
const MAX_HISTOGRAM_TEXT: usize = 4 * 1024 * 1024;
/// The shard bounds `apply --shard` accepts.
pub const MAX_SHARDS: u32 = 10_000;

/// Reads, checks and upgrades the report at `path`; errors name the file.
pub fn read(path: &Path) -> Result<Report, String> {
    let bytes =
        crate::files::read_bounded(path, MAX_REPORT_BYTES).map_err(|e| format!("{}: {e}", crate::units::escape_control(&path.display().to_string())))?;
    from_slice(&bytes).map_err(|e| format!("{}: {e}", crate::units::escape_control(&path.display().to_string())))
}

/// Parses, checks and upgrades a report from its bytes.
pub fn from_slice(bytes: &[u8]) -> Result<Report, String> {
    #[derive(serde::Deserialize)]
    struct Version {
        report_version: Option<u32>,
    }
    let v: Version = serde_json::from_slice(bytes).map_err(|e| format!("{}:{}: not a redis-test report: {e}", e.line(), e.column()))?;
    match v.report_version {
        None => return Err("not a redis-test report: it has no `report_version`".into()),
        Some(0) => return Err("not a redis-test report: `report_version` 0".into()),
        Some(n) if n > REPORT_VERSION => {
            return Err(format!(
                "written by a newer redis-test (report version {n}; this redis-test {} reads versions 1 to {REPORT_VERSION}): upgrade redis-test to read it",
                env!("CARGO_PKG_VERSION")
            ));
        }
        Some(_) => {}
    }
    let mut report: Report = serde_json::from_slice(bytes).map_err(|e| format!("{}:{}: not a redis-test report: {e}", e.line(), e.column()))?;
    check(&report)?;
    if report.report_version < 2 {
        for p in &mut report.time_series {
            p.fill_ok();
        }
    }
    Ok(report)
}

/// Whether a report's figures can be true: bounded collections, consistent counts, histograms
/// whose headers match their bytes, shard numbers within the bounds `apply` applies.
pub fn check(r: &Report) -> Result<(), String> {
    let bound = |what: &str, n: usize, max: usize| if n > max { Err(format!("{what}: {n}, more than the {max} a redis-test report holds")) } else { Ok(()) };
    bound("phases", r.phases.len(), MAX_PHASES)?;
    bound("operation rows", r.phases.iter().map(|p| p.operations.len()).sum(), MAX_ROWS)?;
    bound("faults", r.faults.len(), MAX_FAULTS)?;
    bound("streams", r.streams.len(), MAX_ROWS)?;
    bound("stream samples", r.streams.iter().map(|s| s.series.len()).sum(), MAX_POINTS)?;
    bound("time-series points", r.time_series.len(), MAX_POINTS)?;
    // A run notes at most 100 (kinds of task and message); a merge of every shard's.
    bound("internal errors", r.internal_errors.len(), 100 * MAX_SHARDS as usize)?;
    if let Some(m) = &r.maintenance {
        bound("maintenance handoffs", m.handoffs.len(), MAX_FAULTS)?;
        bound("maintenance message kinds", m.received.len(), 64)?;
    }
    if let Some(s) = r.shard
        && (s.count == 0 || s.count > MAX_SHARDS || s.index >= s.count)
    {
        return Err(format!("shard {} of {} cannot be: a run has 1 to {MAX_SHARDS} shards, numbered from 0", s.index, s.count));
    }
    let finite = |what: String, x: f64| if x.is_finite() && x >= 0.0 { Ok(()) } else { Err(format!("{what}: {x} is not a finite value of zero or more")) };
    finite("duration_s".into(), r.duration_s)?;
    finite("time_scale".into(), r.time_scale)?;
    if r.totals.errors > r.totals.count {
        return Err(format!("totals: {} errors out of {} operations", r.totals.errors, r.totals.count));
    }
    for (pi, p) in r.phases.iter().enumerate() {
        let at = format!("phases[{pi}] ({})", crate::units::escape_control(&p.name));
        finite(format!("{at}.start_s"), p.start_s)?;
        finite(format!("{at}.duration_s"), p.duration_s)?;
        if p.errors > p.count {
            return Err(format!("{at}: {} errors out of {} operations", p.errors, p.count));
        }
        for (oi, o) in p.operations.iter().enumerate() {
            let at = format!("{at}.operations[{oi}]");
            let errors = o.errors.values().try_fold(0u64, |a, b| a.checked_add(*b)).ok_or_else(|| format!("{at}: its errors add up past 2^64"))?;
            if errors > o.count || o.ok > o.count || o.miss > o.ok || o.ok.checked_add(errors).is_none_or(|sum| sum > o.count) {
                return Err(format!("{at}: {} operations cannot hold {} successes ({} misses) and {errors} errors", o.count, o.ok, o.miss));
            }
            bound(&format!("{at}.blocks"), o.blocks.len(), MAX_BLOCKS)?;
            if o.blocks.iter().any(|b| b.errors > b.count || !b.secs.is_finite() || b.secs < 0.0) {
                return Err(format!("{at}: a block with more errors than operations or a negative length"));
            }
            if let Some(h) = &o.histogram {
                if h.len() > MAX_HISTOGRAM_TEXT {
                    return Err(format!("{at}: a histogram of {} bytes of text is not one of ours", h.len()));
                }
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD.decode(h).map_err(|e| format!("{at}: histogram: {e}"))?;
                super::check_histogram(&bytes).map_err(|e| format!("{at}: {e}"))?;
            }
        }
    }
    for (fi, f) in r.faults.iter().enumerate() {
        let Some(v) = &f.result else { continue };
        let at = format!("faults[{fi}] ({})", crate::units::escape_control(&f.name));
        bound(&format!("{at}.gaps"), v.gaps.len(), crate::outcome::MAX_GAPS)?;
        bound(&format!("{at}.steps"), v.steps.len(), MAX_STEPS)?;
        for x in [v.at_s, v.finished_s, v.outage_s, v.window_end_s] {
            finite(format!("{at}: a time"), x)?;
        }
        if v.gaps.iter().any(|g| !(g.from_s.is_finite() && g.to_s.is_finite() && g.from_s <= g.to_s)) {
            return Err(format!("{at}: a gap that ends before it starts"));
        }
    }
    for (i, p) in r.time_series.iter().enumerate() {
        if p.errors > p.ops || p.ok > p.ops {
            return Err(format!("time_series[{i}]: {} operations cannot hold {} successes and {} errors", p.ops, p.ok, p.errors));
        }
    }
    // Every figure a reader adds up fits once summed over the whole report, so no subset of it
    // (a class of errors over all rows, a phase's commands) can overflow either.
    let total = |what: &str, values: &mut dyn Iterator<Item = u64>| -> Result<(), String> {
        let mut sum = 0u64;
        for v in values {
            sum = sum.checked_add(v).ok_or_else(|| format!("{what} add up past what a count can hold: they cannot be true"))?;
        }
        Ok(())
    };
    let rows = || r.phases.iter().flat_map(|p| &p.operations);
    total("the operations of every row", &mut rows().map(|o| o.count))?;
    total("the retries of every row", &mut rows().map(|o| o.retries))?;
    total("the phases' operations", &mut r.phases.iter().map(|p| p.count))?;
    total("the phases' deliveries", &mut r.phases.iter().map(|p| p.deliveries))?;
    total("the phases' scheduled operations", &mut r.phases.iter().filter_map(|p| p.scheduled))?;
    total("the commands sent", &mut r.phases.iter().flat_map(|p| p.commands.values().copied()).chain(r.other_commands.values().copied()))?;
    total("the time series' operations", &mut r.time_series.iter().map(|p| p.ops))?;
    total(
        "the faults' errors",
        &mut r
            .faults
            .iter()
            .filter_map(|f| f.result.as_ref())
            .flat_map(|v| v.errors.values().copied().chain(v.steps.iter().flat_map(|s| s.errors.values().copied()))),
    )?;
    total(
        "the verified writes",
        &mut r.verify.iter().flat_map(|v| {
            [
                v.checked,
                v.lost,
                v.changed,
                v.indeterminate,
                v.unreadable,
                v.counters,
                v.increments_acknowledged,
                v.increments_lost,
                v.increments_duplicated,
                v.increments_indeterminate,
            ]
        }),
    )?;
    total(
        "the subscribers' figures",
        &mut r.pubsub.iter().flat_map(|p| &p.subscribers).flat_map(|s| [s.received, s.lost, s.duplicates, s.out_of_order, s.reconnects]),
    )?;
    total(
        "the streams' figures",
        &mut r
            .streams
            .iter()
            .flat_map(|s| [s.produced, s.add_failed, s.delivered, s.acked, s.claimed, s.duplicated, s.lost, s.trimmed, s.corrupted, s.pending, s.lag]),
    )?;
    let c = &r.connections;
    total(
        "the connection counters",
        &mut [c.opened, c.dropped.unwrap_or(0), c.connect_errors.unwrap_or(0), c.reconnects.unwrap_or(0), c.topology_refreshes.unwrap_or(0)]
            .into_iter()
            .chain(c.cluster_redirects.iter().flat_map(|m| m.values().copied())),
    )?;
    if let Some(o) = &r.otlp {
        total("the OTLP export counts", &mut std::iter::once(o.exports).chain(o.failures.values().copied()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_from_a_newer_redis_test_is_refused_saying_so() {
        let e = from_slice(br#"{"report_version": 99, "whatever": true}"#).unwrap_err();
        assert!(e.contains("newer redis-test (report version 99"), "{e}");
        let e = from_slice(br#"{"name": "x"}"#).unwrap_err();
        assert!(e.contains("no `report_version`"), "{e}");
    }

    #[test]
    fn a_histogram_claiming_more_than_it_holds_is_refused_before_decoding() {
        // regression: hardening II item 2. 60 bytes of base64 claiming a 4 GiB payload.
        let mut bomb = Vec::new();
        bomb.extend_from_slice(&0x1c84_9313u32.to_be_bytes());
        bomb.extend_from_slice(&u32::MAX.to_be_bytes());
        bomb.extend_from_slice(&0u32.to_be_bytes());
        bomb.extend_from_slice(&3u32.to_be_bytes());
        bomb.extend_from_slice(&1u64.to_be_bytes());
        bomb.extend_from_slice(&60_000_000u64.to_be_bytes());
        bomb.extend_from_slice(&1.0f64.to_be_bytes());
        bomb.extend_from_slice(&[0u8; 4]);
        assert!(super::super::check_histogram(&bomb).unwrap_err().contains("claims 4294967295 bytes"));
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(&bomb);
        assert!(super::super::deserialize_histogram(&text).is_none());
        // A real one passes.
        let mut h = crate::metrics::new_histogram();
        h.record(1234).unwrap();
        let ours = super::super::serialize_histogram(&h).unwrap();
        assert_eq!(super::super::deserialize_histogram(&ours).unwrap().len(), 1);
    }
}
