//! Local deployments: redis-server processes that redis-test starts on free loopback ports for a
//! run (and that tests start too), stopped when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::scenario::model::{HostPort, Secret};

/// Why a local server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The binary is missing.
    #[error("`{0}` is not installed: install the Debian/Ubuntu package `{1}` (apt-get install {1})")]
    NotInstalled(&'static str, &'static str),
    /// It started but never became ready, or died.
    #[error("redis-server did not start: {0}")]
    Failed(String),
}

/// A redis-server on a loopback port, stopped and cleaned up on drop.
pub struct LocalServer {
    child: tokio::sync::Mutex<Option<Child>>,
    /// Where it listens (a restart with a new port moves it).
    addr: std::sync::RwLock<HostPort>,
    dir: PathBuf,
    conf: PathBuf,
    kind: NodeKind,
    /// The redis-server it runs when not the one on PATH (after a rolling upgrade).
    binary: std::sync::Mutex<Option<PathBuf>>,
}

/// A port that was free a moment ago (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `secret` as a quoted string in a Redis config file, backslashes and quotes escaped (passwords
/// go in files, not on command lines, where `ps` would show them).
pub fn config_quoted(secret: &Secret) -> String {
    format!("\"{}\"", secret.expose().replace('\\', "\\\\").replace('"', "\\\""))
}

/// Which program a local node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// redis-server.
    Server,
    /// redis-sentinel.
    Sentinel,
}

impl LocalServer {
    /// Starts redis-server with `extra` config lines; waits for "Ready to accept connections".
    pub async fn start(password: Option<&Secret>, extra: &[String]) -> Result<LocalServer, LocalError> {
        Self::start_node(NodeKind::Server, password, extra, None).await
    }

    /// Starts a node; when `wait_for` is given, also waits for a log line containing it (a replica's
    /// finished sync, a sentinel's discovery of the replica).
    pub async fn start_node(kind: NodeKind, password: Option<&Secret>, extra: &[String], wait_for: Option<&str>) -> Result<LocalServer, LocalError> {
        let mut last = String::new();
        // The port is chosen before the server binds it; on the rare clash, pick another. A
        // cluster node also refuses a port above 55535 (its bus port is 10000 higher) and the OS
        // hands out ports up to 60999: pick again.
        for _ in 0..10 {
            match Self::try_start(kind, password, extra, wait_for).await {
                Ok(s) => return Ok(s),
                Err(LocalError::Failed(msg)) if msg.contains("Address already in use") || msg.contains("port number too high") => last = msg,
                Err(e) => return Err(e),
            }
        }
        Err(LocalError::Failed(last))
    }

    async fn try_start(kind: NodeKind, password: Option<&Secret>, extra: &[String], wait_for: Option<&str>) -> Result<LocalServer, LocalError> {
        remove_stale_dirs();
        let port = free_port().map_err(|e| LocalError::Failed(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| LocalError::Failed(format!("{}: {e}", dir.display())))?;
        let mut conf = match kind {
            // DEBUG is allowed from loopback so that `debug_sleep` faults work on local targets.
            NodeKind::Server => format!(
                "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile \"\"\ndaemonize no\nenable-debug-command local\n",
                dir.display()
            ),
            NodeKind::Sentinel => format!("port {port}\nbind 127.0.0.1\ndir {}\nlogfile \"\"\ndaemonize no\n", dir.display()),
        };
        if let Some(pw) = password {
            // In a file, not on the command line, where `ps` would show it.
            conf.push_str(&format!("requirepass {}\n", config_quoted(pw)));
        }
        for line in extra {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = dir.join("redis.conf");
        write_private(&conf_path, &conf).map_err(|e| LocalError::Failed(format!("{}: {e}", conf_path.display())))?;
        match spawn_ready(&conf_path, kind, wait_for, None).await {
            Ok(child) => {
                tracing::info!(port, ?kind, "local node started");
                Ok(LocalServer {
                    child: tokio::sync::Mutex::new(Some(child)),
                    addr: std::sync::RwLock::new(HostPort { host: "127.0.0.1".into(), port }),
                    dir,
                    conf: conf_path,
                    kind,
                    binary: std::sync::Mutex::new(None),
                })
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Where it listens now.
    pub fn addr(&self) -> HostPort {
        self.addr.read().expect("addr lock").clone()
    }

    /// The server's process id while it runs.
    pub async fn pid(&self) -> Option<u32> {
        self.child.lock().await.as_ref().and_then(|c| c.id())
    }

    /// From now on the node runs `binary` (a rolling upgrade); takes effect at the next restart.
    pub fn use_binary(&self, binary: &std::path::Path) {
        *self.binary.lock().expect("binary lock") = Some(binary.to_path_buf());
    }

    /// Goes back to `binary` (`None`: redis-server on PATH); returns the one it ran.
    pub fn replace_binary(&self, binary: Option<PathBuf>) -> Option<PathBuf> {
        std::mem::replace(&mut *self.binary.lock().expect("binary lock"), binary)
    }

    /// Stops the server (SIGKILL, like a crash), waits `down_for`, and starts it again on the same port.
    pub async fn restart(&self, down_for: Duration) -> Result<(), LocalError> {
        self.kill().await;
        tokio::time::sleep(down_for).await;
        self.start_again(false, &[]).await
    }

    /// Stops the server with SIGKILL, like a crash.
    pub async fn kill(&self) {
        if let Some(mut c) = self.child.lock().await.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts a killed server again: on the same port, or with `new_port` on another one (its
    /// files and identity kept, as a node moved to another address); `extra` config lines replace
    /// the ones with the same first word (`replicaof ...`).
    pub async fn start_again(&self, new_port: bool, extra: &[String]) -> Result<(), LocalError> {
        let mut guard = self.child.lock().await;
        if let Some(mut c) = guard.take() {
            let _ = c.kill().await;
        }
        let binary = self.binary.lock().expect("binary lock").clone();
        if !new_port && extra.is_empty() {
            *guard = Some(spawn_ready(&self.conf, self.kind, None, binary.as_deref()).await?);
            tracing::info!(port = self.addr().port, "local redis-server restarted");
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.conf).map_err(|e| LocalError::Failed(format!("{}: {e}", self.conf.display())))?;
        let mut last = String::new();
        // As at the first start: a port taken meanwhile, or too high for a cluster node, is
        // picked again.
        for _ in 0..10 {
            let port = if new_port { free_port().map_err(|e| LocalError::Failed(e.to_string()))? } else { self.addr().port };
            let replaced: Vec<String> = std::iter::once(format!("port {port}")).chain(extra.iter().cloned()).collect();
            let keys: Vec<&str> = replaced.iter().filter_map(|l| l.split_whitespace().next()).collect();
            let mut conf: Vec<String> = text.lines().filter(|l| !l.split_whitespace().next().is_some_and(|k| keys.contains(&k))).map(str::to_owned).collect();
            conf.extend(replaced.iter().cloned());
            write_private(&self.conf, &(conf.join("\n") + "\n")).map_err(|e| LocalError::Failed(format!("{}: {e}", self.conf.display())))?;
            match spawn_ready(&self.conf, self.kind, None, binary.as_deref()).await {
                Ok(child) => {
                    *guard = Some(child);
                    let old = std::mem::replace(&mut *self.addr.write().expect("addr lock"), HostPort { host: "127.0.0.1".into(), port });
                    tracing::info!(from = old.port, port, "local redis-server restarted");
                    return Ok(());
                }
                Err(LocalError::Failed(msg)) if new_port && (msg.contains("Address already in use") || msg.contains("port number too high")) => last = msg,
                Err(e) => return Err(e),
            }
        }
        Err(LocalError::Failed(last))
    }

    /// Stops the server and removes its folder.
    pub async fn stop(self) {
        if let Some(mut c) = self.child.lock().await.take() {
            let _ = c.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Local nodes keep their files in `<temp>/redis-test-<pid>-<port>`.
const DIR_PREFIX: &str = "redis-test-";

/// Removes the folders of local nodes whose redis-test process is gone (killed with -9, or a
/// machine that crashed): their nodes died with it, their files are left over.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DIR_PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<libc::pid_t>().ok()) else { continue };
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let gone = pid > 0 && unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && e.path().is_dir() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Starts a node on a config file and waits for its "Ready to accept connections" line (and
/// then for `wait_for`, when given).
async fn spawn_ready(conf_path: &std::path::Path, kind: NodeKind, wait_for: Option<&str>, binary: Option<&std::path::Path>) -> Result<Child, LocalError> {
    let (program, package) = match kind {
        NodeKind::Server => ("redis-server", "redis-server"),
        NodeKind::Sentinel => ("redis-sentinel", "redis-sentinel"),
    };
    let mut cmd = Command::new(binary.map_or(std::path::Path::new(program), |b| b));
    cmd.arg(conf_path).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    // The node dies with redis-test, however redis-test ends (kill -9 included): the kernel sends
    // it SIGKILL when its parent goes. If the parent is already gone, it does not start.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
                return Err(std::io::Error::other("redis-test is gone"));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LocalError::NotInstalled(program, package),
        _ => LocalError::Failed(e.to_string()),
    })?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    // What it says on stderr (a binary that is not redis-server, a bad option) names why it failed.
    let stderr_tail = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::<String>::new()));
    let stderr_reader = child.stderr.take().map(|stderr| {
        let tail = std::sync::Arc::clone(&stderr_tail);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut t = tail.lock().expect("stderr lock");
                t.push_back(line);
                if t.len() > 5 {
                    t.pop_front();
                }
            }
        })
    });
    let mut log = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(15), async {
        // Sentinels do not announce readiness the way servers do; their ID line comes once they listen.
        let ready_line = if kind == NodeKind::Sentinel { "Sentinel ID is" } else { "Ready to accept connections" };
        let mut waiting = Some(ready_line);
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = waiting.is_some_and(|w| line.contains(w));
            log.push(line);
            if hit {
                waiting = if waiting == Some(ready_line) { wait_for } else { None };
                if waiting.is_none() {
                    return true;
                }
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        // Why: how it ended (or that it never said it was ready), then its last words.
        let how = match (ready.is_err(), tokio::time::timeout(Duration::from_secs(1), child.wait()).await) {
            (true, _) => "not ready after 15s".to_owned(),
            (false, Ok(Ok(status))) => format!("{} exited ({status}) without saying it was ready", cmd.as_std().get_program().to_string_lossy()),
            (false, _) => "it closed its output without saying it was ready".to_owned(),
        };
        let _ = child.kill().await;
        // Its stderr ends with it: read to the end before quoting it.
        if let Some(r) = stderr_reader {
            let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
        }
        let mut said: Vec<String> = log.iter().rev().take(5).rev().cloned().collect();
        said.extend(stderr_tail.lock().expect("stderr lock").iter().cloned());
        let said = if said.is_empty() { "(no output)".to_owned() } else { said.join(" | ") };
        return Err(LocalError::Failed(format!("{how}: {said}")));
    }
    // Keep draining its output so a full pipe never blocks the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(child)
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(c) = self.child.get_mut().as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_in_a_config_file_is_quoted_with_its_quotes_and_backslashes_escaped() {
        assert_eq!(config_quoted(&Secret::new(r#"p"a\ss w"#)), r#""p\"a\\ss w""#);
        assert_eq!(config_quoted(&Secret::new("")), r#""""#);
    }
}
