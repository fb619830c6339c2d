//! Live progress on stderr. On a terminal: a bar per phase with the current ops/s, p50/p99 of the
//! last second, errors, workers and connections. Elsewhere (CI logs): a line when a phase starts
//! and one plain line per `--interval`. It only reads the once-a-second status the executor
//! publishes, so it never slows the workers.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use super::thresholds::format_us;
use crate::live::Live;
use crate::metrics::{IntervalStats, new_histogram};
use crate::plan::{Plan, PlannedPhase};
use crate::units::format_duration;

/// How to show progress.
#[derive(Debug, Clone, Copy)]
pub struct ProgressOptions {
    /// Period of plain lines.
    pub interval: Duration,
    /// Bars on a terminal (else plain lines).
    pub tty: bool,
    /// Colours (off with `NO_COLOR`).
    pub color: bool,
}

impl ProgressOptions {
    /// Bars when stderr is a terminal; colours unless `NO_COLOR` is set.
    pub fn detect(interval: Duration) -> ProgressOptions {
        ProgressOptions { interval, tty: std::io::stderr().is_terminal(), color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }
}

/// One line describing a phase as it starts.
pub fn phase_banner(p: &PlannedPhase) -> String {
    let rate =
        p.rate.map_or_else(|| "closed loop".to_owned(), |r| if r.from == r.to { format!("{} ops/s", r.from) } else { format!("{}→{} ops/s", r.from, r.to) });
    let workers = if p.workers.from == p.workers.to { p.workers.from.to_string() } else { format!("{}→{}", p.workers.from, p.workers.to) };
    format!("phase {} started ({}, {workers} workers, {rate})", p.name, format_duration(p.duration))
}

/// The figures of one display update.
fn figures(secs: f64, iv: &IntervalStats, live: &Live) -> String {
    let rate = if secs > 0.0 { iv.ops as f64 / secs } else { 0.0 };
    let (p50, p99) = if iv.latency.is_empty() {
        ("-".to_owned(), "-".to_owned())
    } else {
        (format_us(iv.latency.value_at_quantile(0.5) as f64), format_us(iv.latency.value_at_quantile(0.99) as f64))
    };
    let target = live.target_rate.map_or_else(String::new, |t| format!(" (target {t:.0})"));
    format!(
        "{rate:.0} ops/s{target} | p50 {p50} p99 {p99} | errors {} (total {}) | workers {} | conns {}",
        iv.errors, live.total_errors, live.workers, live.connections
    )
}

/// Shows progress until the status channel closes.
pub async fn show(plan: Plan, mut rx: watch::Receiver<Live>, opts: ProgressOptions) {
    let mut shown_phase: Option<usize> = None;
    let mut bar: Option<ProgressBar> = None;
    let mut pending = IntervalStats { latency: new_histogram(), ops: 0, errors: 0 };
    let mut pending_secs = 0.0;
    while rx.changed().await.is_ok() {
        let live = rx.borrow_and_update().clone();
        if let Some(iv) = &live.interval {
            let _ = pending.latency.add(&iv.latency);
            pending.ops += iv.ops;
            pending.errors += iv.errors;
            pending_secs += live.interval_secs;
        }
        if live.phase != shown_phase {
            if let Some(b) = bar.take() {
                b.finish();
            }
            if let Some(p) = live.phase.and_then(|i| plan.phases.get(i)) {
                if opts.tty {
                    let b = ProgressBar::with_draw_target(Some(p.duration.as_millis() as u64), ProgressDrawTarget::stderr());
                    let template = if opts.color {
                        "{prefix:.bold.cyan} [{bar:30.cyan/blue}] {elapsed_precise}/{duration_precise} {msg}"
                    } else {
                        "{prefix} [{bar:30}] {elapsed_precise}/{duration_precise} {msg}"
                    };
                    b.set_style(ProgressStyle::with_template(template).expect("static template").progress_chars("=> "));
                    b.set_prefix(p.name.clone());
                    bar = Some(b);
                } else {
                    crate::errln!("redis-test: {}", phase_banner(p));
                }
            }
            shown_phase = live.phase;
        }
        let Some(p) = live.phase.and_then(|i| plan.phases.get(i)) else { continue };
        match &bar {
            Some(b) => {
                b.set_position(live.elapsed.saturating_sub(p.start).as_millis() as u64);
                if let Some(iv) = &live.interval {
                    b.set_message(figures(live.interval_secs, iv, &live));
                }
                pending = IntervalStats::default();
                pending_secs = 0.0;
            }
            // Ticks drift by a few milliseconds; a 5 s interval is 5 ticks, not 6.
            None if pending_secs >= opts.interval.as_secs_f64() * 0.95 => {
                let pct = 100.0 * live.elapsed.saturating_sub(p.start).as_secs_f64() / p.duration.as_secs_f64().max(1e-9);
                crate::errln!("redis-test: [{:>7.1}s] {} {pct:>3.0}% | {}", live.elapsed.as_secs_f64(), p.name, figures(pending_secs, &pending, &live));
                pending = IntervalStats::default();
                pending_secs = 0.0;
            }
            None => {}
        }
    }
    if let Some(b) = bar.take() {
        b.finish();
    }
}
