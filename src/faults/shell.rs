//! The `shell` fault: a command run by `sh -c` in a process group of its own. It is done when the
//! shell exits (a background child it leaves does not hold the fault open); the whole group is
//! killed when the run ends, and a watchdog kills it if redis-test itself is killed (`kill -9`), so
//! no child of a fault outlives the run.

use std::os::fd::{FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use crate::client::native::conn::ConnectSpec;

/// Most output kept per stream (the tail is what a detail shows).
const KEEP: usize = 4096;
/// How long the output of an exited shell may take to be read (it is in the pipe already; a
/// background child that keeps the pipe open must not hold the fault).
const DRAIN: Duration = Duration::from_millis(200);

/// A shell fault's process group: killed when dropped (the run ends), and by its watchdog when
/// redis-test dies without dropping it.
pub struct ProcessGroup {
    pgid: i32,
    /// The write end of the watchdog's pipe: closing it (here, or by the kernel when redis-test
    /// dies) tells the watchdog to kill the group.
    _watchdog: Option<OwnedFd>,
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is involved.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
    }
}

/// Starts a watchdog for process group `pgid`: a `sh` in a group of its own that waits on a pipe
/// only redis-test holds open, and kills the group when it closes. Best effort: without it, the
/// group still dies when the run ends normally.
fn watchdog(pgid: i32) -> Option<OwnedFd> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two descriptors we then own; O_CLOEXEC keeps the write end out of every
    // child (the watchdog gets the read end as its stdin, which exec keeps).
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both descriptors were just created and are owned here alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let spawned = std::process::Command::new("sh")
        .arg("-c")
        .arg("while read -r _; do :; done; kill -9 -\"$0\" 2>/dev/null")
        .arg(pgid.to_string())
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(child) => {
            // Reaped by a thread of its own: it lives as long as the group it watches.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
            Some(write)
        }
        Err(_) => None,
    }
}

/// Runs `command` with `timeout`; the group it started is pushed onto `groups`, which the
/// scheduler drops (killing it) when the run ends.
pub async fn shell(command: &str, timeout: Duration, spec: &ConnectSpec, groups: &Mutex<Vec<ProcessGroup>>) -> Result<String, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("REDIS_TEST_TARGET", spec.addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        groups.lock().expect("process groups lock").push(ProcessGroup { pgid: pid, _watchdog: watchdog(pid) });
    }
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        child.stdout.take().map(|s| tokio::spawn(keep_tail(s, Arc::clone(&stdout)))),
        child.stderr.take().map(|s| tokio::spawn(keep_tail(s, Arc::clone(&stderr)))),
    ];
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Err(_) => return Err(format!("timed out after {}; killed", crate::units::format_duration(timeout))),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(status)) => status,
    };
    // The shell has exited; what it wrote is in the pipes. A background child may hold them open:
    // take what has arrived rather than wait for it.
    for r in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(DRAIN, r).await;
    }
    let out = tail(&stdout.lock().expect("output lock"));
    let err = tail(&stderr.lock().expect("output lock"));
    if status.success() {
        Ok(format!("exit 0: {out}"))
    } else {
        let why = if err.is_empty() { if out.is_empty() { "(no output)".to_owned() } else { out } } else { err };
        Err(format!("{status}: {why}"))
    }
}

/// Reads a stream to its end, keeping its last [`KEEP`] bytes.
async fn keep_tail(mut from: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut kept = into.lock().expect("output lock");
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > KEEP {
            let cut = kept.len() - KEEP;
            kept.drain(..cut);
        }
    }
}

/// The last line-ish part of some output, at most 200 characters.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim();
    let start = t.char_indices().rev().nth(199).map_or(0, |(i, _)| i);
    t[start..].to_owned()
}
