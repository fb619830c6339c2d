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

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
    let _ = writeln!(out, "}} {value}");
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
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", fam.def.help);
        for p in &fam.points {
            match &p.value {
                Value::Number(v) => sample(&mut out, name, &p.labels, &common, *v),
                Value::Histogram(b) => {
                    for (bound, count) in BUCKETS_S.iter().zip(&b.cumulative) {
                        let mut labels = p.labels.clone();
                        labels.push(("le", bound.to_string()));
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
                Err(_) => continue,
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
