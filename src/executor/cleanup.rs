//! Cleanup: remove exactly the keys under the scenario's prefix, with SCAN MATCH + UNLINK.
//! Never FLUSHDB or FLUSHALL: the database may hold someone else's data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::client::native::conn::{Conn, ConnError, ConnectSpec};
use crate::resp::{self, Value};

/// Keys asked for per SCAN call.
const SCAN_COUNT: &[u8] = b"1000";

/// Removes every key starting with `prefix` from every primary; returns how many were removed.
/// `progress` counts them as they go, so a caller that stops waiting still knows how far it got.
pub async fn remove_prefix_everywhere(
    deployment: &crate::deployment::Deployment,
    prefix: &str,
    timeout: Duration,
    progress: &AtomicU64,
) -> Result<u64, ConnError> {
    let nodes = deployment.data_nodes(&deployment.spec, false).await.map_err(ConnError::Io)?;
    let per_key = deployment.cluster.is_some();
    for spec in &nodes {
        remove_prefix(spec, prefix, timeout, per_key, progress).await?;
    }
    Ok(progress.load(Ordering::Relaxed))
}

/// Removes every key starting with `prefix` from one server; returns how many were removed.
/// `per_key` sends one UNLINK per key (pipelined) for cluster nodes, where one UNLINK of keys in
/// different slots would be refused with CROSSSLOT.
pub async fn remove_prefix(spec: &ConnectSpec, prefix: &str, timeout: Duration, per_key: bool, progress: &AtomicU64) -> Result<u64, ConnError> {
    debug_assert!(!prefix.is_empty(), "validation refuses empty prefixes");
    let mut conn = Conn::connect(spec).await?;
    let pattern = format!("{}*", escape_glob(prefix));
    let mut cursor = b"0".to_vec();
    let mut removed = 0;
    loop {
        let reply = conn.command(&[b"SCAN", &cursor, b"MATCH", pattern.as_bytes(), b"COUNT", SCAN_COUNT], timeout).await?;
        let Value::Array(parts) = reply else { return Err(ConnError::Rejected(format!("unexpected SCAN reply {reply:?}"))) };
        let (Some(next), Some(Value::Array(keys))) = (parts.first().and_then(Value::as_bytes), parts.get(1)) else {
            return Err(ConnError::Rejected("malformed SCAN reply".into()));
        };
        let next = next.to_vec();
        let keys: Vec<&[u8]> = keys.iter().filter_map(Value::as_bytes).filter(|k| k.starts_with(prefix.as_bytes())).collect();
        if !keys.is_empty() {
            let mut buf = Vec::new();
            let commands = if per_key {
                for k in &keys {
                    resp::command(&mut buf, &[b"UNLINK", k]);
                }
                keys.len()
            } else {
                let mut args: Vec<&[u8]> = vec![b"UNLINK"];
                args.extend(keys.iter().copied());
                resp::command(&mut buf, &args);
                1
            };
            let mut out = Vec::new();
            tokio::time::timeout(timeout * 4, conn.roundtrip(&buf, commands, &mut out)).await.map_err(|_| ConnError::Timeout)??;
            let n = out.iter().map(|v| if let Value::Int(n) = v { *n as u64 } else { 0 }).sum::<u64>();
            removed += n;
            progress.fetch_add(n, Ordering::Relaxed);
        }
        if next == b"0" {
            return Ok(removed);
        }
        cursor = next;
    }
}

/// Escapes glob characters so the prefix matches only itself.
fn escape_glob(s: &str) -> String {
    s.chars().fold(String::new(), |mut out, c| {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(super::escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
