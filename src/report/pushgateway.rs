//! Pushing the final metrics to a Prometheus Pushgateway when a run ends — the Prometheus
//! convention for batch jobs, whose process is gone before the next scrape. One PUT of the
//! text exposition to `/metrics/job/redis-test/run_id/<id>/instance_id@base64/<id>` (the group is
//! replaced whole; base64 keeps any instance id a valid path segment). A failure is reported and
//! logged, never a change to the run's result.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::families::Source;

/// What the push did.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushReport {
    /// The Pushgateway, credentials removed.
    pub url: String,
    /// The grouping key's path (`/metrics/job/redis-test/run_id/…`).
    pub group: String,
    /// Whether the Pushgateway accepted the metrics.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// The group path for a run.
pub fn group_path(run_id: &str, instance_id: &str) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.as_bytes());
    // An empty value needs the base64 form too (`=`), which URL_SAFE_NO_PAD gives as "".
    let instance = if instance_id.is_empty() { "=".to_owned() } else { b64(instance_id) };
    format!("/metrics/job/redis-test/run_id@base64/{}/instance_id@base64/{instance}", if run_id.is_empty() { "=".to_owned() } else { b64(run_id) })
}

/// Pushes the final snapshot of `src` to `url`, within `timeout`.
pub async fn push(url: &str, src: &Source, timeout: std::time::Duration) -> PushReport {
    let group = group_path(&src.labels.run_id, &src.labels.instance_id);
    let shown = redact(url);
    let result = async {
        let endpoint = crate::http::Endpoint::parse(url, None)?;
        let body = super::prometheus::render(src);
        let how = crate::http::Send { method: "PUT", path: &group, content_type: "text/plain; version=0.0.4", headers: &[], gzip: false, timeout };
        let answer = endpoint.send(&how, body.as_bytes()).await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(format!("HTTP status {}: {}", answer.status, String::from_utf8_lossy(&answer.body).trim().chars().take(300).collect::<String>()))
        }
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(pushgateway = %shown, group = %group, "final metrics pushed");
            PushReport { url: shown, group, ok: true, error: None }
        }
        Err(e) => {
            tracing::warn!(pushgateway = %shown, error = %e, "could not push the final metrics; the run's result stands");
            PushReport { url: shown, group, ok: false, error: Some(e) }
        }
    }
}

use crate::http::redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_base64_and_credentials_are_not_shown() {
        assert_eq!(group_path("r-1", "host/a"), "/metrics/job/redis-test/run_id@base64/ci0x/instance_id@base64/aG9zdC9h");
        assert_eq!(redact("http://u:secret@gw:9091"), "http://***@gw:9091");
        assert_eq!(crate::http::split_credentials("http://u:p%40ss@gw:9091/x").0, "http://gw:9091/x");
        assert_eq!(redact("http://gw:9091/x@y"), "http://gw:9091/x@y");
    }
}
