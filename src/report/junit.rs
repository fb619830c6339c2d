//! JUnit XML, the format CI systems show in their test tabs: one test suite per run, one test case
//! per threshold (a failure carries what was observed against the limit) and per fault (a failure
//! when the fault could not do what it should), and one per part of the run that stopped on a bug.
//! A rule that measured nothing fails, as it does in the summary.

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
        let failure = if r.shard.is_some() { None } else { f.failure(r.interrupted, &r.internal_errors) };
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
                let _ = writeln!(cases, "<system-out>did not run: {}</system-out></testcase>", xml(f.not_run(r.interrupted, &r.internal_errors)));
            }
        }
    }
    // Parts of the run that stopped on a bug: a failing case each, as they fail the exit code
    // (a shard's are judged by `merge`, which keeps them).
    for e in &r.internal_errors {
        let _ = write!(cases, "    <testcase classname=\"{}.run\" name=\"internal error\" time=\"0\">", xml(&r.scenario));
        if r.shard.is_some() {
            let _ = writeln!(cases, "<system-out>{} (judged at merge)</system-out></testcase>", xml(e));
        } else {
            failures += 1;
            let _ = writeln!(cases, "\n      <failure message=\"{}\" type=\"internal\">{}</failure>\n    </testcase>", xml(e), xml(e));
        }
    }
    let tests = r.thresholds.len() + r.faults.len() + r.internal_errors.len();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_of_the_run_that_stopped_on_a_bug_fails_the_exit_code_the_summary_and_the_junit_file_alike() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report-v1.json");
        let mut r = crate::report::read::read(std::path::Path::new(fixture)).unwrap();
        assert_eq!((r.exit_code(), render(&r).contains("<failure")), (crate::exit::OK, false), "the fixture passes");
        r.internal_errors = vec!["a worker task stopped before the end: panicked: overflow when adding duration to instant".to_owned()];
        assert_eq!(r.exit_code(), crate::exit::THRESHOLD_FAILED);
        let verdict = crate::report::summary::verdict_line(&r);
        assert!(
            verdict.starts_with("verdict: FAIL (exit 1)") && verdict.contains("internal error: a worker task stopped before the end: panicked"),
            "{verdict}"
        );
        let xml = render(&r);
        assert!(xml.contains("failures=\"1\"") && xml.contains("type=\"internal\">a worker task stopped"), "{xml}");
        assert!(crate::report::html::render(&r).contains("<span class=\"bad\">FAILED</span>"));
        // A shard's are judged by `merge`, as its thresholds and faults are.
        r.shard = Some(crate::shard::Shard { index: 0, count: 2, writers_each: 1 });
        assert_eq!(r.exit_code(), crate::exit::OK);
        let summary = crate::report::summary::render(&r);
        assert!(summary.contains("internal errors (the figures miss what these would have done)\n  a worker task stopped"), "{summary}");
        assert!(render(&r).contains("failures=\"0\"") && render(&r).contains("(judged at merge)"));
    }

    #[test]
    fn a_fault_that_panicked_is_said_to_have_stopped_on_a_bug_not_to_have_been_outrun() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report-v1.json");
        let mut r = crate::report::read::read(std::path::Path::new(fixture)).unwrap();
        r.faults[0].result = None;
        // A fault the run ended before: that is what it says.
        assert_eq!(r.faults[0].failure(false, &r.internal_errors).as_deref(), Some("it did not run: the run ended before its offset"));
        r.internal_errors = vec!["a fault task stopped before the end: `client_kill@5s` panicked: a bug".to_owned()];
        let why = "it did not run: it stopped on a bug (see the internal errors)";
        assert_eq!(r.faults[0].failure(false, &r.internal_errors).as_deref(), Some(why));
        assert_eq!(r.faults[0].failure(true, &r.internal_errors).as_deref(), Some(why), "interrupted or not");
        assert!(r.failures().iter().any(|f| f.contains(why)), "{:?}", r.failures());
        assert!(render(&r).contains(why), "{}", render(&r));
        assert!(crate::report::summary::render(&r).contains("did not run: it stopped on a bug"));
        assert!(crate::report::html::render(&r).contains("did not run: it stopped on a bug"));
        // Another fault's panic is not this one's.
        r.internal_errors = vec!["a fault task stopped before the end: `kill@2s` panicked: a bug".to_owned()];
        assert_eq!(r.faults[0].failure(false, &r.internal_errors).as_deref(), Some("it did not run: the run ended before its offset"));
    }
}
