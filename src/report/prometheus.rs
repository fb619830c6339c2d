//! Prometheus `/metrics` in the text exposition format, served during the run (and for `--linger`
//! after it). Each scrape renders a fresh [`super::families`] snapshot.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::{BUCKETS_S, MetricKind};

pub use super::families::{CommonLabels, Source};
use super::families::{Value, snapshot};

/// A label value: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// HELP text: backslash and newline escaped (quotes stay as they are).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the exposition format spells it: `+Inf`, `-Inf`, `NaN`, else the number.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, String)], common: &[(&str, String)], value: f64) {
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in labels.iter().chain(common).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    let _ = writeln!(out, "}} {}", number(value));
}

/// The exposition text as of now.
pub fn render(src: &Source) -> String {
    let common = src.labels.pairs();
    let mut out = String::with_capacity(16 * 1024);
    for fam in snapshot(src) {
        let name = fam.def.name;
        let kind = match fam.def.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", escape_help(fam.def.help));
        for p in &fam.points {
            match &p.value {
                Value::Number(v) => sample(&mut out, name, &p.labels, &common, *v),
                Value::Histogram(b) => {
                    for (bound, count) in BUCKETS_S.iter().zip(&b.cumulative) {
                        let mut labels = p.labels.clone();
                        labels.push(("le", number(*bound)));
                        sample(&mut out, &format!("{name}_bucket"), &labels, &common, *count as f64);
                    }
                    let mut labels = p.labels.clone();
                    labels.push(("le", "+Inf".into()));
                    sample(&mut out, &format!("{name}_bucket"), &labels, &common, b.count as f64);
                    sample(&mut out, &format!("{name}_sum"), &p.labels, &common, b.sum);
                    sample(&mut out, &format!("{name}_count"), &p.labels, &common, b.count as f64);
                }
            }
        }
    }
    out
}

/// Serves `GET /metrics` until `stop` turns true. Each connection gets one response and is closed.
pub async fn serve(listener: TcpListener, src: Arc<Source>, mut stop: watch::Receiver<bool>) {
    loop {
        let (mut sock, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors (EMFILE) or the like: the error repeats at once, so
                    // retrying at once would spin a core. Wait a little; the run goes on meanwhile.
                    tracing::debug!(error = %e, "metrics endpoint: accept failed; retrying in 100 ms");
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_millis(100)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            },
            _ = stop.changed() => return,
        };
        let src = Arc::clone(&src);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut used = 0;
            // Read the request head (bounded in size and time); only the request line matters.
            let head = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while used < buf.len() {
                    let n = sock.read(&mut buf[used..]).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    used += n;
                    if buf[..used].windows(4).any(|w| w == b"\r\n\r\n") {
                        return Some(());
                    }
                }
                None
            })
            .await;
            if !matches!(head, Ok(Some(()))) {
                return;
            }
            let line = String::from_utf8_lossy(&buf[..used]).lines().next().unwrap_or_default().to_owned();
            let (status, body, ctype) = if line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?") {
                ("200 OK", render(&src), "text/plain; version=0.0.4; charset=utf-8")
            } else {
                ("404 Not Found", "only /metrics is served here\n".to_owned(), "text/plain; charset=utf-8")
            };
            let response = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_format_is_spelt_as_prometheus_reads_it() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(escape_help("a \\ b\nc \"q\""), "a \\\\ b\\nc \"q\"");
        assert_eq!(escape("x\"y\\z\n"), "x\\\"y\\\\z\\n");
        let mut out = String::new();
        sample(&mut out, "m", &[("le", number(f64::INFINITY))], &[], f64::INFINITY);
        assert_eq!(out, "m{le=\"+Inf\"} +Inf\n");
    }
}
