//! JUnit XML, the format CI systems show in their test tabs: one test suite per run, one test case
//! per threshold (a failure carries what was observed against the limit) and per fault (a failure
//! when the fault could not do what it should). A rule that measured nothing fails, as it does in
//! the summary.

use std::fmt::Write as _;

use super::Report;

/// Text for an XML attribute or element.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The report as JUnit XML.
pub fn render(r: &Report) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    for t in &r.thresholds {
        let scope = t.scope();
        let name = if scope.is_empty() { t.expr.clone() } else { format!("{} [{}]", t.expr, scope.join(", ")) };
        let _ = write!(cases, "    <testcase classname=\"{}.thresholds\" name=\"{}\" time=\"0\">", xml(&r.scenario), xml(&name));
        if t.passed {
            let _ = writeln!(cases, "<system-out>observed {}</system-out></testcase>", xml(&t.observed_text));
        } else {
            failures += 1;
            let msg = format!("observed {} against `{}`", t.observed_text, t.expr);
            let _ = writeln!(cases, "\n      <failure message=\"{}\" type=\"threshold\">{}</failure>\n    </testcase>", xml(&msg), xml(&msg));
        }
    }
    for f in &r.faults {
        let _ = write!(cases, "    <testcase classname=\"{}.faults\" name=\"{}\" time=\"0\">", xml(&r.scenario), xml(&format!("{} ({})", f.name, f.action)));
        // The same judgement the exit code makes (Report::failures): a shard's faults are judged
        // by `merge`, a fault that is not required never fails the run.
        let failure = if r.shard.is_some() { None } else { f.failure(r.interrupted) };
        match (&f.result, failure) {
            (_, Some(why)) => {
                failures += 1;
                let _ = writeln!(cases, "\n      <failure message=\"{}\" type=\"fault\">{}</failure>\n    </testcase>", xml(&why), xml(&why));
            }
            (Some(v), None) => {
                let note = match (v.ok, r.shard.is_some()) {
                    (true, _) => String::new(),
                    (false, true) => "FAILED (judged at merge): ".to_owned(),
                    (false, false) => "FAILED (not required): ".to_owned(),
                };
                let _ = writeln!(cases, "<system-out>{}{}; outage {:.3}s</system-out></testcase>", xml(&note), xml(&v.detail), v.outage_s);
            }
            (None, None) => {
                let _ = writeln!(cases, "<system-out>did not run</system-out></testcase>");
            }
        }
    }
    let tests = r.thresholds.len() + r.faults.len();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"redis-test\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        r.duration_s,
        xml(&format!("{} ({})", r.scenario, r.run_id)),
        r.duration_s,
        xml(r.started_at.trim_end_matches('Z'))
    );
    s.push_str(&cases);
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
