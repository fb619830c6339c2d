//! The end-of-run summary: a table per phase and operation, then pub/sub, verification and
//! threshold verdicts.

use std::fmt::Write as _;

use crate::outcome::Recovery;

use super::thresholds::format_us;
use super::{Percentiles, Report};

fn us(p: Option<&Percentiles>, f: impl Fn(&Percentiles) -> u64) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format_us(f(p) as f64))
}

/// The summary's short name of a row's unit.
fn unit_short(u: crate::metrics::OpRole) -> &'static str {
    match u {
        crate::metrics::OpRole::RoundTrip => "trip",
        crate::metrics::OpRole::Command => "cmd",
        crate::metrics::OpRole::Delivery => "msg",
    }
}

/// Renders the summary as text.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let state = if r.interrupted { "  INTERRUPTED" } else { "" };
    let _ = writeln!(s, "\nrun {}  scenario {}  target {}  client {}  {:.1}s{state}", r.run_id, r.scenario, r.target.address, r.client, r.duration_s);
    for p in &r.phases {
        let rate = match p.target_rate {
            Some([a, b]) if a == b => format!("target {a} ops/s"),
            Some([a, b]) => format!("target {a}→{b} ops/s"),
            None => "closed loop".to_owned(),
        };
        let backlog = match p.backlog {
            Some(b) if b > 0 => format!(", {b} scheduled ops not started (load fell behind)"),
            _ => String::new(),
        };
        let commands: u64 = p.commands.values().sum();
        let deliveries = if p.deliveries > 0 { format!(", {} deliveries", p.deliveries) } else { String::new() };
        let _ = writeln!(
            s,
            "\nphase {} ({:.1}s, workers {}→{}, {rate}): {} ops, {:.1} ops/s, {} errors{backlog}; {commands} commands sent{deliveries}",
            p.name, p.duration_s, p.workers[0], p.workers[1], p.count, p.ops_per_sec, p.errors
        );
        let _ = writeln!(
            s,
            "  {:<16} {:<14} {:<4} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
            "workload", "operation", "unit", "count", "per sec", "p50", "p99", "p99.9", "max", "miss", "errors"
        );
        for o in &p.operations {
            let errors: u64 = o.errors.values().sum();
            let _ = writeln!(
                s,
                "  {:<16} {:<14} {:<4} {:>9} {:>10.1} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
                o.workload,
                o.operation,
                unit_short(o.unit),
                o.count,
                o.ops_per_sec,
                us(o.latency_us.as_ref(), |p| p.p50),
                us(o.latency_us.as_ref(), |p| p.p99),
                us(o.latency_us.as_ref(), |p| p.p999),
                us(o.latency_us.as_ref(), |p| p.max),
                o.miss,
                errors
            );
            if errors > 0 || o.retries > 0 {
                let mut detail: Vec<String> = o.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
                if let Some(e) = &o.error_latency_us {
                    detail.push(format!("failures took p50 {} / max {}", format_us(e.p50 as f64), format_us(e.max as f64)));
                }
                if o.retries > 0 {
                    detail.push(format!("resent after connection errors {}", o.retries));
                }
                let _ = writeln!(s, "  {:<36} {}", "", detail.join(", "));
            }
        }
    }
    if !r.phases.is_empty() {
        let _ = writeln!(
            s,
            "\n  ops = round trips (what `rate` schedules and `ops_per_sec` judges); unit: trip = one round trip, cmd = a command inside a batch (counted, not timed), msg = a pub/sub or stream delivery (timed from its publication). Latencies are from the intended start, over successful operations only."
        );
    }
    if !r.other_commands.is_empty() {
        let other: Vec<String> = r.other_commands.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  commands outside the phases (setup, health checks, faults, verify, cleanup): {}", other.join(", "));
    }
    for ps in &r.pubsub {
        for sub in &ps.subscribers {
            let _ = writeln!(
                s,
                "\npubsub {} subscriber {}: received {}, lost {}, duplicates {}, out of order {}, reconnects {}",
                ps.workload, sub.subscriber, sub.received, sub.lost, sub.duplicates, sub.out_of_order, sub.reconnects
            );
        }
    }
    for st in &r.streams {
        let _ = writeln!(
            s,
            "\nstream {} {}: produced {}, delivered {}, acknowledged {}, claimed {}, duplicated {}, lost {}, trimmed {}, corrupted {}; at the end pending {}, lag {}{}{}",
            st.workload,
            crate::units::escape_control(&st.stream),
            st.produced,
            st.delivered,
            st.acked,
            st.claimed,
            st.duplicated,
            st.lost,
            st.trimmed,
            st.corrupted,
            st.pending,
            st.lag,
            if st.add_failed > 0 { format!("; {} XADDs failed", st.add_failed) } else { String::new() },
            if st.unchecked { "; more entries than could be remembered: some unchecked" } else { "" },
        );
    }
    for f in &r.faults {
        match &f.result {
            None => {
                let why = f.not_run(r.interrupted, &r.internal_errors);
                let _ = writeln!(s, "\nfault {} planned at {:.2}s: did not run: {why} ({})", f.name, f.at_s, f.action);
            }
            Some(v) => {
                let ttfe = v.time_to_first_error_s.map_or_else(|| "no errors".to_owned(), |x| format!("first error after {}", format_us(x * 1e6)));
                let recovery = match v.recovery() {
                    Recovery::Recovered => match v.recovery_s {
                        Some(x) if x <= 0.0 => "never below its level".to_owned(),
                        Some(x) => format!("back within 10% after {}", format_us(x * 1e6)),
                        None => "back".to_owned(),
                    },
                    Recovery::NotRecovered => "NOT RECOVERED within its window".to_owned(),
                    Recovery::NoLevel => "no level before it to judge recovery by".to_owned(),
                    Recovery::TooShort => format!(
                        "window of {:.2} s too short to judge recovery ({} s needed)",
                        v.window_end_s - v.at_s,
                        crate::outcome::RECOVERY_HOLD.as_secs_f64()
                    ),
                };
                let level = v.recovery_level_ops.map(|l| format!(" (level {l} ops/s)")).unwrap_or_default();
                let errors: Vec<String> = v.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let late = match v.planned_s {
                    Some(p) if v.late => format!(" ({:.3}s late: planned at {p:.2}s)", v.at_s - p),
                    _ => String::new(),
                };
                let status = match (v.ok, v.required) {
                    (true, _) => "",
                    (false, true) => "FAILED: ",
                    (false, false) => "FAILED (not required, the run goes on): ",
                };
                let _ = writeln!(
                    s,
                    "\nfault {} at {:.2}s{late}: {} — {status}{}\n  {ttfe}; outage {}; throughput {recovery}{level}; {}; {} in flight; errors: {}",
                    v.name,
                    v.at_s,
                    v.action,
                    v.detail,
                    format_us(v.outage_s * 1e6),
                    v.reconnects.map_or_else(|| "reconnects not observable with redis-rs".to_owned(), |n| format!("{n} reconnects")),
                    v.in_flight,
                    if errors.is_empty() { "none".to_owned() } else { errors.join(", ") }
                );
                for st in &v.steps {
                    let errors: Vec<String> = st.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    let _ = writeln!(
                        s,
                        "  step {} at {:.2}s{}: took {}; outage {}; errors: {}",
                        st.name,
                        st.at_s,
                        if st.ok { String::new() } else { format!(" FAILED ({})", st.detail) },
                        format_us(st.took_s * 1e6),
                        format_us(st.outage_s * 1e6),
                        if errors.is_empty() { "none".to_owned() } else { errors.join(", ") }
                    );
                }
                if !v.outage_by_shard_s.is_empty() {
                    let shards: Vec<String> = v.outage_by_shard_s.iter().map(|(k, o)| format!("{k} {}", format_us(o * 1e6))).collect();
                    let _ = writeln!(s, "  outage by shard: {}", shards.join(", "));
                }
                if let Some(m) = &v.maintenance {
                    let _ = writeln!(s, "  maintenance: {}", fault_maintenance_line(m));
                }
            }
        }
    }
    for m in &r.master_moves {
        if r.target.mode == "standalone" {
            let _ = writeln!(s, "\nendpoint moved {} → {} at {} (a MOVING notice); the native client handed its connections off", m.from, m.to, m.at);
            continue;
        }
        // The native engine follows the watcher; redis-rs asks the sentinels itself when it reconnects.
        let who = if r.client == "native" { "redis-test followed it" } else { "seen by redis-test's sentinel watcher" };
        let _ = writeln!(s, "\nmaster moved {} → {} at {}; {who}", m.from, m.to, m.at);
    }
    if let Some(m) = &r.maintenance {
        let _ = writeln!(s, "\n{}", maintenance_line(m));
    }
    for v in &r.verify {
        let partial = if v.truncated { " (partial: too many writes to remember)" } else { "" };
        let _ = writeln!(
            s,
            "\nverify {}: {} acknowledged writes checked, {} lost, {} changed, {} unreadable{partial}",
            v.workload, v.checked, v.lost, v.changed, v.unreadable
        );
        if v.indeterminate > 0 {
            let _ = writeln!(
                s,
                "  {} of them hold a later write that failed for the client and was applied by the server (indeterminate, not lost)",
                v.indeterminate
            );
        }
        if v.counters > 0 {
            let _ = writeln!(
                s,
                "  counters: {} checked, {} increments acknowledged, {} lost, {} duplicated, {} indeterminate (failed for the client, applied by the server)",
                v.counters, v.increments_acknowledged, v.increments_lost, v.increments_duplicated, v.increments_indeterminate
            );
        }
    }
    let _ = writeln!(s, "\nconnections: {}", connections_line(&r.connections));
    if let Some(line) = cluster_line(&r.connections) {
        let _ = writeln!(s, "{line}");
    }
    if let Some(c) = &r.cleanup {
        match &c.error {
            None => {
                let _ = writeln!(s, "cleanup: removed {} keys under `{}`", c.removed, c.prefix);
            }
            Some(e) => {
                let _ = writeln!(s, "cleanup: FAILED after {} keys under `{}`: {e}", c.removed, c.prefix);
            }
        }
    }
    if let Some(o) = &r.otlp {
        let failures: Vec<String> = o.failures.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        let _ = writeln!(
            s,
            "otlp: {} exports, {} failed{}",
            o.exports,
            o.failures.values().sum::<u64>(),
            if failures.is_empty() { String::new() } else { format!(" ({})", failures.join("; ")) }
        );
    }
    if let Some(p) = &r.pushgateway {
        match &p.error {
            None => {
                let _ = writeln!(s, "pushgateway: final metrics pushed to {} ({})", p.url, p.group);
            }
            Some(e) => {
                let _ = writeln!(s, "pushgateway: FAILED to push to {}: {e} (the run's result stands)", p.url);
            }
        }
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(s, "\nthresholds");
        for t in &r.thresholds {
            let scope = t.scope();
            let scope = if scope.is_empty() { String::new() } else { format!(" [{}]", scope.join(", ")) };
            let _ = writeln!(s, "  {} {}{scope}: observed {}", if t.passed { "PASS" } else { "FAIL" }, t.expr, t.observed_text);
        }
    }
    if !r.deferred_thresholds.is_empty() {
        let _ = writeln!(s, "\nthresholds: {} rules, judged at merge (this report is one shard's share of the run)", r.deferred_thresholds.len());
    }
    if !r.internal_errors.is_empty() {
        // Shown whatever the verdict line says (a shard's are judged by merge, but seen here).
        let _ = writeln!(s, "\ninternal errors (the figures miss what these would have done)");
        for e in &r.internal_errors {
            let _ = writeln!(s, "  {e}");
        }
    }
    let _ = writeln!(s, "\n{}", verdict_line(r));
    // Names and details come from files (a saved report, a scenario): nothing in them may drive
    // the terminal.
    crate::units::escape_terminal(&s)
}

/// The run's verdict in one line, from the same report the exit code and the JUnit file read.
pub fn verdict_line(r: &Report) -> String {
    let failures = r.failures();
    if r.interrupted {
        "verdict: INTERRUPTED (exit 130): the figures cover the part that ran".to_owned()
    } else if let Some(s) = r.shard {
        format!("verdict: shard {} of {} ran (exit 0); thresholds and faults are judged by `redis-test merge`", s.index, s.count)
    } else if failures.is_empty() {
        "verdict: PASS".to_owned()
    } else {
        format!("verdict: FAIL (exit 1)\n  - {}", failures.join("\n  - "))
    }
}

/// What the client did about cluster redirects, when there is anything to say: the counts, or
/// that redis-rs followed them out of sight.
pub fn cluster_line(c: &super::ConnectionReport) -> Option<String> {
    match (&c.cluster_redirects, c.topology_refreshes) {
        (None, _) | (_, None) => Some("cluster: redirects and slot-map reads not observable with redis-rs (it follows them itself)".to_owned()),
        (Some(r), Some(0)) if r.is_empty() => None,
        (Some(r), Some(n)) => {
            let classes: Vec<String> = r.iter().map(|(c, n)| format!("{c} {n}")).collect();
            Some(format!(
                "cluster: redirects followed: {}; slot map read again {n} times",
                if classes.is_empty() { "none".to_owned() } else { classes.join(", ") }
            ))
        }
    }
}

/// `13 opened, 0 dropped, 0 reconnects, 0 failed to open`; counters the client hides are named
/// as such instead of being shown as 0.
pub fn connections_line(c: &super::ConnectionReport) -> String {
    let mut shown = vec![format!("{} opened", c.opened)];
    let mut hidden = Vec::new();
    for (n, what) in [(c.dropped, "dropped"), (c.reconnects, "reconnects"), (c.connect_errors, "failed to open")] {
        match n {
            Some(n) => shown.push(format!("{n} {what}")),
            None => hidden.push(what),
        }
    }
    if !hidden.is_empty() {
        shown.push(format!("{} not observable with redis-rs", hidden.join(", ")));
    }
    shown.join(", ")
}

/// What the client did with maintenance notifications, in two or three lines.
pub(crate) fn maintenance_line(m: &crate::client::maintenance::ClientReport) -> String {
    let mut out = format!("maintenance notifications ({}, {}): ", m.client, m.mode);
    if m.enabled_connections == 0 && m.unsupported_connections == 0 {
        out.push_str("never asked for");
    } else {
        out.push_str(&format!("enabled on {} connection(s)", m.enabled_connections));
        if m.unsupported_connections > 0 {
            let said = m.unsupported_reply.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            out.push_str(&format!(", not supported by the server on {}{said}", m.unsupported_connections));
        }
    }
    let received: Vec<String> = m.received.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out.push_str(&format!(
        "\n  received {}; relaxed windows {} ({} closed by the backstop), {:.2}s in all",
        if received.is_empty() { "none".to_owned() } else { received.join(", ") },
        m.relaxed_windows,
        m.relaxed_backstops,
        m.relaxed_s
    ));
    for h in &m.handoffs {
        let took = h.handoff_time_s.map_or_else(|| "some never closed".to_owned(), |t| format!("the last closed after {}", format_us(t * 1e6)));
        out.push_str(&format!(
            "\n  handoff (MOVING {} at {:.2}s to {}): {} old connection(s) replaced; {took}",
            h.seq,
            h.at_s,
            h.endpoint.as_deref().unwrap_or("the same address"),
            h.connections_moved
        ));
    }
    out.push_str(&format!("\n  {}", m.behaviour));
    out
}

/// What a maintenance fault announced and closed, in a sentence.
pub(crate) fn fault_maintenance_line(m: &crate::outcome::MaintenanceRun) -> String {
    let sent: Vec<String> = m.sent.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let closed = m.closed_at_end.map(|c| format!("; {c} connection(s) still on the old endpoint were closed at the end of the notice")).unwrap_or_default();
    format!("{} connection(s) listening; sent {}{closed}", m.listening, if sent.is_empty() { "nothing".to_owned() } else { sent.join(", ") })
}
