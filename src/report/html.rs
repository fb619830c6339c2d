//! The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing fetched when
//! opened), rendered from the same [`Report`] as the JSON file, so a saved report renders the same.

use std::fmt::Write as _;

use super::thresholds::format_us;
use super::{Report, deserialize_histogram};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 220.0;
const PAD_L: f64 = 64.0;
const PAD_B: f64 = 28.0;
const PAD_T: f64 = 12.0;
const PHASE_COLORS: [&str; 6] = ["#dbeafe", "#dcfce7", "#fef9c3", "#fce7f3", "#e0e7ff", "#ffedd5"];

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the report as a complete HTML document.
pub fn render(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("redis-test {} — {}", esc(&r.scenario), esc(&r.run_id));
    let _ = write!(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>{}</style></head><body>\n", CSS);
    // The verdict the exit code gives, from the same report.
    let verdict = if r.interrupted {
        "<span class=\"bad\">INTERRUPTED</span>"
    } else if r.shard.is_some() {
        "<span>SHARD (judged at merge)</span>"
    } else if r.failures().is_empty() {
        "<span class=\"good\">PASSED</span>"
    } else {
        "<span class=\"bad\">FAILED</span>"
    };
    let _ = writeln!(h, "<h1>{title} {verdict}</h1>");
    for e in &r.internal_errors {
        let _ = writeln!(h, "<p class=\"bad\">internal error: {}</p>", esc(e));
    }
    if let Some(d) = &r.description {
        let _ = writeln!(h, "<p>{}</p>", esc(d));
    }
    let _ = writeln!(
        h,
        "<table class=\"kv\"><tr><th>target</th><td>{} (mode {}, {}, TLS {})</td></tr><tr><th>started</th><td>{}</td></tr><tr><th>ended</th><td>{}</td></tr><tr><th>duration</th><td>{:.1} s{}</td></tr><tr><th>totals</th><td>{} round trips, {:.1}/s, {} errors ({:.4}%), p50 {}, p99 {}, p99.9 {} (successful operations)</td></tr><tr><th>client</th><td>{}</td></tr><tr><th>connections</th><td>{}{}</td></tr></table>",
        esc(&r.target.address),
        esc(&r.target.mode),
        esc(&r.target.protocol),
        esc(&r.target.tls),
        esc(&r.started_at),
        esc(&r.ended_at),
        r.duration_s,
        if r.time_scale != 1.0 { format!(" (time scale {})", r.time_scale) } else { String::new() },
        r.totals.count,
        r.totals.ops_per_sec,
        r.totals.errors,
        r.totals.error_rate * 100.0,
        format_us(r.totals.latency_us.p50 as f64),
        format_us(r.totals.latency_us.p99 as f64),
        format_us(r.totals.latency_us.p999 as f64),
        esc(&r.client),
        esc(&super::summary::connections_line(&r.connections)),
        super::summary::cluster_line(&r.connections).map_or_else(String::new, |l| esc(&format!("; {l}"))),
    );
    let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&r.latency_note));

    thresholds_table(&mut h, r);
    faults_table(&mut h, r);
    if let Some(m) = &r.maintenance {
        let _ = writeln!(h, "<h2 id=\"maintenance\">Maintenance notifications</h2>\n<pre>{}</pre>", esc(&super::summary::maintenance_line(m)));
    }
    let _ = writeln!(h, "<h2>Phase timeline</h2>");
    h.push_str(&timeline(r));
    let _ = writeln!(h, "<h2>Throughput</h2>");
    let _ = writeln!(
        h,
        "<p class=\"note\">Successful operations per second (blue) and failed ones (red), each second; shaded: fault windows, from each fault's start until it was done.</p>"
    );
    let per_sec = |n: u64, p: &crate::outcome::TimePoint| if p.secs > 0.0 { n as f64 / p.secs } else { 0.0 };
    h.push_str(&series_chart(
        r,
        "throughput",
        &[("ok/s", "#2563eb", &|p| p.ok_per_sec), ("errors/s", "#dc2626", &|p| per_sec(p.errors, p))],
        &|v| format!("{v:.0}"),
        Scale::Linear,
    ));
    let _ = writeln!(h, "<h2>Latency over time</h2>");
    let _ = writeln!(
        h,
        "<p class=\"note\">p50 and p99 of successful operations each second, on a logarithmic axis: a 1.5 s stall and a 20 ms fault stay readable side by side.</p>"
    );
    h.push_str(&series_chart(r, "latency", &[("p50", "#16a34a", &|p| p.p50_us as f64), ("p99", "#dc2626", &|p| p.p99_us as f64)], &format_us, Scale::Log));
    let _ = writeln!(h, "<h2>Latency distribution per operation</h2>");
    h.push_str(&distributions(r));
    let _ = writeln!(h, "<h2>Errors by class</h2>");
    h.push_str(&errors(r));
    let _ = writeln!(h, "<h2>Phases and operations</h2>");
    h.push_str(&phase_tables(r));
    h.push_str("</body></html>\n");
    h
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111}h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f5f5f5}\
table.kv th,table.kv td{text-align:left}.good{color:#15803d}.bad{color:#b91c1c}.note{color:#555;font-size:12px;max-width:900px}\
svg{display:block;margin:6px 0}svg text{font:11px system-ui,sans-serif;fill:#333}";

fn thresholds_table(h: &mut String, r: &Report) {
    let _ = writeln!(h, "<h2 id=\"thresholds\">Thresholds</h2>");
    if r.thresholds.is_empty() {
        h.push_str("<p>No thresholds.</p>\n");
        return;
    }
    h.push_str("<table><tr><th>verdict</th><th>rule</th><th>scope</th><th>observed</th></tr>\n");
    for t in &r.thresholds {
        let scope: Vec<String> = t.scope().iter().map(|s| esc(s)).collect();
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td><td>{}</td></tr>",
            if t.passed { "good" } else { "bad" },
            if t.passed { "PASS" } else { "FAIL" },
            esc(&t.expr),
            if scope.is_empty() { "whole run".into() } else { scope.join(", ") },
            esc(&t.observed_text)
        );
    }
    h.push_str("</table>\n");
}

fn faults_table(h: &mut String, r: &Report) {
    if r.faults.is_empty() {
        return;
    }
    let _ = writeln!(h, "<h2 id=\"faults\">Faults and recovery</h2>");
    h.push_str("<table><tr><th>fault</th><th>at</th><th>action</th><th>result</th><th>first error</th><th>outage</th><th>recovery</th><th>errors</th><th>reconnects</th></tr>\n");
    for f in &r.faults {
        let cells = match &f.result {
            None => vec![format!("did not run: {}", f.not_run(r.interrupted, &r.internal_errors)), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()],
            Some(v) => vec![
                format!(
                    "<span class=\"{}\">{}</span> {}{}",
                    if v.ok { "good" } else { "bad" },
                    match (v.ok, v.required) {
                        (true, _) => "ok",
                        (false, true) => "FAILED",
                        (false, false) => "FAILED (not required)",
                    },
                    esc(&v.detail),
                    match v.planned_s {
                        Some(p) if v.late => format!(" <span class=\"bad\">started {:.3}s late</span>", v.at_s - p),
                        _ => String::new(),
                    }
                ),
                v.time_to_first_error_s.map_or("none".into(), |x| format_us(x * 1e6)),
                if v.outage_by_shard_s.is_empty() {
                    format_us(v.outage_s * 1e6)
                } else {
                    let shards: Vec<String> = v.outage_by_shard_s.iter().map(|(k, o)| format!("{k}: {}", format_us(o * 1e6))).collect();
                    format!("{}<br><small>{}</small>", format_us(v.outage_s * 1e6), esc(&shards.join(", ")))
                },
                match v.recovery() {
                    crate::outcome::Recovery::Recovered => v.recovery_s.map_or("back".into(), |x| if x == 0.0 { "no dip".into() } else { format_us(x * 1e6) }),
                    crate::outcome::Recovery::NotRecovered => "<span class=\"bad\">not recovered</span>".into(),
                    crate::outcome::Recovery::NoLevel => "no level to judge by".into(),
                    crate::outcome::Recovery::TooShort => "window too short to judge".into(),
                },
                if v.errors.is_empty() { "none".into() } else { esc(&v.errors.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")) },
                super::count_or_hidden(v.reconnects),
            ],
        };
        let _ = write!(
            h,
            "<tr><td style=\"text-align:left\">{}</td><td>{:.2}s</td><td style=\"text-align:left\">{}</td>",
            esc(&f.name),
            f.result.as_ref().map_or(f.at_s, |v| v.at_s),
            esc(&f.action)
        );
        for c in cells {
            let _ = write!(h, "<td style=\"text-align:left\">{c}</td>");
        }
        h.push_str("</tr>\n");
        if let Some(m) = f.result.as_ref().and_then(|v| v.maintenance.as_ref()) {
            let _ = writeln!(
                h,
                "<tr><td style=\"text-align:left\">&nbsp;&nbsp;↳ maintenance</td><td></td><td colspan=\"7\" style=\"text-align:left\">{}</td></tr>",
                esc(&super::summary::fault_maintenance_line(m))
            );
        }
        // The rules judged over this fault's window, beside it (they are in the thresholds table too).
        for t in r.thresholds.iter().filter(|t| t.fault.as_deref() == Some(f.name.as_str())) {
            let _ = writeln!(
                h,
                "<tr><td style=\"text-align:left\">&nbsp;&nbsp;↳ rule</td><td></td><td colspan=\"7\" style=\"text-align:left\"><span class=\"{}\">{}</span> {} (observed {})</td></tr>",
                if t.passed { "good" } else { "bad" },
                if t.passed { "PASS" } else { "FAIL" },
                esc(&t.expr),
                esc(&t.observed_text)
            );
        }
        // Steps of a fault made of several (a rolling upgrade), each with its own verdict.
        for st in f.result.iter().flat_map(|v| &v.steps) {
            let errors =
                if st.errors.is_empty() { "none".into() } else { esc(&st.errors.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")) };
            let _ = writeln!(
                h,
                "<tr><td style=\"text-align:left\">&nbsp;&nbsp;↳ {}</td><td>{:.2}s</td><td style=\"text-align:left\">took {}</td><td style=\"text-align:left\">{}</td><td></td><td style=\"text-align:left\">{}</td><td></td><td style=\"text-align:left\">{errors}</td><td></td></tr>",
                esc(&st.name),
                st.at_s,
                format_us(st.took_s * 1e6),
                if st.ok { "ok".to_owned() } else { format!("FAILED: {}", esc(&st.detail)) },
                format_us(st.outage_s * 1e6),
            );
        }
    }
    h.push_str("</table>\n");
}

fn x_of(t: f64, span: f64) -> f64 {
    PAD_L + (WIDTH - PAD_L - 10.0) * (t / span.max(1e-9))
}

/// Phase bands and fault markers shared by the time charts.
fn backdrop(r: &Report, height: f64) -> String {
    let mut s = String::new();
    let span = r.duration_s;
    for (i, p) in r.phases.iter().enumerate() {
        let (x0, x1) = (x_of(p.start_s, span), x_of(p.start_s + p.duration_s, span));
        let _ = write!(
            s,
            "<rect class=\"phase\" x=\"{x0:.1}\" y=\"{PAD_T}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>",
            (x1 - x0).max(0.5),
            height - PAD_T - PAD_B,
            PHASE_COLORS[i % PHASE_COLORS.len()],
            esc(&p.name)
        );
        let _ = write!(s, "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{PAD_T}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"3,3\"/>", height - PAD_B);
        let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x0 + 3.0, PAD_T + 11.0, esc(&p.name));
    }
    for (i, f) in r.faults.iter().enumerate() {
        // Shaded from the fault's start until it was done (at least 2 px for an instant one).
        let (from, to) = f.result.as_ref().map_or((f.at_s, f.at_s), |v| (v.at_s, v.finished_s.max(v.at_s)));
        let (x0, x1) = (x_of(from, span), x_of(to, span));
        let _ = write!(
            s,
            "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{PAD_T}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#b91c1c\" fill-opacity=\"0.18\" stroke=\"#b91c1c\" stroke-width=\"1\"><title>{} ({}): {:.2}s – {:.2}s</title></rect>",
            (x1 - x0).max(2.0),
            height - PAD_T - PAD_B,
            esc(&f.name),
            esc(&f.action),
            from,
            to
        );
        // Labels stagger so that faults close together stay legible.
        let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#b91c1c\">⚡ {}</text>", x0 + 3.0, PAD_T + 24.0 + 12.0 * (i % 3) as f64, esc(&f.name));
    }
    s
}

fn timeline(r: &Report) -> String {
    let height = 70.0;
    let mut s = format!("<svg id=\"timeline\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">");
    s.push_str(&backdrop(r, height));
    axis_x(&mut s, r.duration_s, height);
    s.push_str("</svg>\n");
    s
}

fn axis_x(s: &mut String, span: f64, height: f64) {
    let y = height - PAD_B;
    let _ = write!(s, "<line x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#333\"/>", WIDTH - 10.0);
    let step = nice_step(span / 8.0);
    // At most a few ticks, counted rather than summed up to the span: a report's span is input,
    // and a tiny one must not mean billions of ticks.
    let ticks = if step > 0.0 && span.is_finite() { ((span / step) * (1.0 + 1e-9)).floor().clamp(0.0, 20.0) as u32 } else { 0 };
    for i in 0..=ticks {
        let t = step * f64::from(i);
        let x = x_of(t, span);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\">{}s</text>",
            y + 4.0,
            x - 6.0,
            y + 16.0,
            trim(t)
        );
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag)
}

type Pick<'a> = &'a dyn Fn(&crate::outcome::TimePoint) -> f64;

/// How a chart's values map to height.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    /// Logarithmic from 1 (µs): a long stall beside a short fault keeps both readable.
    Log,
}

/// Most points drawn per line: a long run's series is drawn as each bucket's lowest and highest
/// value, so dips and spikes stay visible and the page stays small.
const MAX_DRAWN: usize = 1000;

/// The points of one line as drawn: every point, or per bucket its lowest and highest.
fn drawn(points: &[crate::outcome::TimePoint], f: Pick<'_>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_DRAWN {
        return points.iter().map(|p| (p.t, f(p))).collect();
    }
    let per = points.len().div_ceil(MAX_DRAWN / 2);
    let mut out = Vec::with_capacity(MAX_DRAWN + 2);
    for chunk in points.chunks(per) {
        let (lo, hi) = chunk.iter().fold((None::<&crate::outcome::TimePoint>, None::<&crate::outcome::TimePoint>), |(lo, hi), p| {
            (if lo.is_none_or(|l| f(p) < f(l)) { Some(p) } else { lo }, if hi.is_none_or(|h| f(p) > f(h)) { Some(p) } else { hi })
        });
        let mut pair: Vec<&crate::outcome::TimePoint> = lo.into_iter().chain(hi).collect();
        pair.sort_by(|a, b| a.t.total_cmp(&b.t));
        pair.dedup_by(|a, b| a.t == b.t);
        out.extend(pair.into_iter().map(|p| (p.t, f(p))));
    }
    out
}

fn series_chart(r: &Report, id: &str, lines: &[(&str, &str, Pick<'_>)], label: &dyn Fn(f64) -> String, scale: Scale) -> String {
    let mut s = format!("<svg id=\"{id}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">");
    s.push_str(&backdrop(r, HEIGHT));
    let max = r.time_series.iter().flat_map(|p| lines.iter().map(move |(_, _, f)| f(p))).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1.0);
    let top = HEIGHT - PAD_B - PAD_T - 14.0;
    let frac = |v: f64| match scale {
        Scale::Linear => v / max,
        Scale::Log => (v.max(1.0)).log10() / max.log10().max(1.0),
    };
    let y_of = |v: f64| HEIGHT - PAD_B - top * frac(v).clamp(0.0, 1.0);
    let ticks: Vec<f64> = match scale {
        Scale::Linear => vec![0.0, max / 2.0, max],
        Scale::Log => (0..=max.log10().ceil() as i32).map(|e| 10f64.powi(e)).filter(|v| *v <= max * 1.0001).collect(),
    };
    for v in ticks {
        let y = y_of(v);
        let _ = write!(
            s,
            "<line x1=\"{PAD_L}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"4\" y=\"{:.1}\">{}</text>",
            WIDTH - 10.0,
            y + 4.0,
            esc(&label(v))
        );
    }
    if scale == Scale::Log {
        let _ = write!(s, "<text x=\"4\" y=\"{:.1}\">log scale</text>", PAD_T + 8.0);
    }
    for (i, (name, color, f)) in lines.iter().enumerate() {
        let pts: Vec<String> = drawn(&r.time_series, *f).iter().map(|(t, v)| format!("{:.1},{:.1}", x_of(*t, r.duration_s), y_of(*v))).collect();
        let _ = write!(
            s,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{}\"><title>{}</title></polyline>",
            pts.join(" "),
            esc(name)
        );
        let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">— {}</text>", WIDTH - 80.0, PAD_T + 40.0 + 14.0 * i as f64, esc(name));
    }
    axis_x(&mut s, r.duration_s, HEIGHT);
    s.push_str("</svg>\n");
    s
}

/// One small percentile curve per (phase, workload, operation) with a histogram.
fn distributions(r: &Report) -> String {
    const QS: [(f64, &str); 8] = [(0.5, "50"), (0.75, "75"), (0.9, "90"), (0.95, "95"), (0.99, "99"), (0.999, "99.9"), (0.9999, "99.99"), (1.0, "max")];
    let (w, hgt) = (280.0, 150.0);
    let mut s = String::from("<div class=\"dists\">");
    for p in &r.phases {
        for o in &p.operations {
            let Some(hist) = o.histogram.as_deref().and_then(deserialize_histogram) else { continue };
            let values: Vec<f64> = QS.iter().map(|(q, _)| hist.value_at_quantile(*q) as f64).collect();
            let max = values.iter().copied().fold(1.0, f64::max);
            let (l, b) = (48.0, 24.0);
            let x = |i: usize| l + (w - l - 8.0) * i as f64 / (QS.len() - 1) as f64;
            let y = |v: f64| hgt - b - (hgt - b - 18.0) * (v / max);
            let _ = write!(s, "<svg class=\"dist\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" style=\"display:inline-block;margin-right:8px\">");
            let _ = write!(s, "<text x=\"4\" y=\"12\">{} · {} · {}</text>", esc(&p.name), esc(&o.workload), esc(&o.operation));
            let _ = write!(s, "<text x=\"2\" y=\"{:.1}\">{}</text><text x=\"2\" y=\"{:.1}\">0</text>", y(max) + 4.0, format_us(max), hgt - b);
            let pts: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
            let _ = write!(s, "<polyline fill=\"none\" stroke=\"#7c3aed\" stroke-width=\"1.8\" points=\"{}\"/>", pts.join(" "));
            for (i, (v, (_, name))) in values.iter().zip(QS).enumerate() {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#7c3aed\"><title>p{name}: {}</title></circle><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
                    x(i),
                    y(*v),
                    format_us(*v),
                    x(i) - 8.0,
                    hgt - 8.0
                );
            }
            s.push_str("</svg>");
        }
    }
    s.push_str("</div>\n");
    s
}

fn errors(r: &Report) -> String {
    let mut by_class: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for p in &r.phases {
        for o in &p.operations {
            for (k, v) in &o.errors {
                *by_class.entry(k.clone()).or_default() += v;
            }
        }
    }
    if by_class.is_empty() {
        return "<p id=\"errors\">No errors.</p>\n".into();
    }
    let max = by_class.values().copied().max().unwrap_or(1) as f64;
    let height = 24.0 * by_class.len() as f64 + 10.0;
    let mut s = format!("<svg id=\"errors\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">");
    for (i, (k, v)) in by_class.iter().enumerate() {
        let y = 6.0 + 24.0 * i as f64;
        let len = (WIDTH - 260.0) * (*v as f64 / max);
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{}</text><rect x=\"140\" y=\"{y:.1}\" width=\"{len:.1}\" height=\"16\" fill=\"#ef4444\"/><text x=\"{:.1}\" y=\"{:.1}\">{v}</text>",
            y + 12.0,
            esc(k),
            146.0 + len,
            y + 12.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn phase_tables(r: &Report) -> String {
    let mut s = String::new();
    for p in &r.phases {
        let commands: u64 = p.commands.values().sum();
        let _ = writeln!(
            s,
            "<h3>{} — {} round trips, {:.1}/s, {} errors; {commands} commands sent{}</h3>",
            esc(&p.name),
            p.count,
            p.ops_per_sec,
            p.errors,
            if p.deliveries > 0 { format!(", {} deliveries", p.deliveries) } else { String::new() }
        );
        s.push_str("<table><tr><th>workload</th><th>operation</th><th>unit</th><th>count</th><th>per sec</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th><th>miss</th><th>errors</th></tr>\n");
        for o in &p.operations {
            let lat = |f: &dyn Fn(&super::Percentiles) -> u64| o.latency_us.as_ref().map_or("-".to_owned(), |l| format_us(f(l) as f64));
            let _ = writeln!(
                s,
                "<tr><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.workload),
                esc(&o.operation),
                match o.unit {
                    crate::metrics::OpRole::RoundTrip => "round trip",
                    crate::metrics::OpRole::Command => "command in a batch",
                    crate::metrics::OpRole::Delivery => "delivery",
                },
                o.count,
                o.ops_per_sec,
                lat(&|l| l.p50),
                lat(&|l| l.p99),
                lat(&|l| l.p999),
                lat(&|l| l.max),
                o.miss,
                o.errors.values().sum::<u64>()
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("<p>Latencies are from each operation's intended start, over successful operations only; a round trip is what `rate` schedules.</p>\n");
    s
}
