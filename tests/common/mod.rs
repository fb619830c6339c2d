//! Shared test helpers: run the real binary with a deadline, and scratch folders.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a finished `redis-test` process printed.
pub struct Outcome {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redis-test"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in `cwd` with extra environment variables; fails the test if it runs past `deadline`.
pub fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)], deadline: Duration) -> Outcome {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("REDIS_TEST_ENV_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // A watchdog kills the process if it outlives its deadline; the normal path just waits.
    let pid = child.id().to_string();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let expired = finished.recv_timeout(deadline).is_err();
        if expired {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        expired
    });
    let status = child.wait().expect("wait works");
    let _ = done.send(());
    assert!(!watchdog.join().unwrap(), "redis-test {args:?} ran past its {deadline:?} deadline");
    Outcome { code: status.code(), stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

/// Runs the binary at the repository root with a 30 s deadline.
pub fn run(args: &[&str]) -> Outcome {
    run_in(&repo(), args, &[], Duration::from_secs(30))
}

/// A fresh scratch folder under the target directory, removed and recreated: one per test binary
/// and name. Tests run side by side, so a name two tests share is a test removing the other's
/// files mid-run (seen: two network tests both used `net-partition`, and one's report could not
/// be written); `tests/docs.rs` checks that names are unique within each binary.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(env!("CARGO_CRATE_NAME")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A redis-server started for one test on a free loopback port; killed when dropped.
pub struct RedisServer {
    child: std::process::Child,
    /// Its port (the TLS port for TLS-only servers).
    pub port: u16,
    dir: PathBuf,
    /// The CA file when the server speaks TLS only (from its `tls-ca-cert-file` line).
    tls_ca: Option<String>,
}

impl RedisServer {
    /// Starts redis-server with extra config lines and waits for "Ready to accept connections".
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_as(extra, false)
    }

    /// Starts redis-server in sentinel mode (`--sentinel`) with `extra` config lines (the
    /// `sentinel monitor …` ones).
    pub fn start_sentinel(extra: &[&str]) -> RedisServer {
        Self::start_as(extra, true)
    }

    fn start_as(extra: &[&str], sentinel: bool) -> RedisServer {
        for _ in 0..3 {
            if let Some(s) = Self::try_start(extra, sentinel) {
                return s;
            }
        }
        panic!("redis-server did not start (is it installed? scripts/install-deps installs it)");
    }

    fn try_start(extra: &[&str], sentinel: bool) -> Option<RedisServer> {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let mut conf = if sentinel {
            format!("port {port}\nbind 127.0.0.1\ndir {}\nlogfile \"\"\n", dir.display())
        } else {
            format!("port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile \"\"\n", dir.display())
        };
        for line in extra {
            // `{port}` stands for the port chosen here (for `tls-port {port}` with `port 0`).
            conf.push_str(&line.replace("{port}", &port.to_string()));
            conf.push('\n');
        }
        std::fs::write(dir.join("redis.conf"), conf).ok()?;
        let mut cmd = Command::new("redis-server");
        cmd.arg(dir.join("redis.conf"));
        if sentinel {
            cmd.arg("--sentinel");
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("redis-server is installed");
        // Sentinels do not print "Ready to accept connections"; their ID line comes once they listen.
        let ready_line = if sentinel { "Sentinel ID is" } else { "Ready to accept connections" };
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_sent = false;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if !ready_sent && line.contains(ready_line) {
                    let _ = tx.send(true);
                    ready_sent = true;
                }
            }
            let _ = tx.send(false);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(true) => Some(RedisServer { child, port, dir, tls_ca: extra.iter().find_map(|l| l.strip_prefix("tls-ca-cert-file ")).map(str::to_owned) }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs redis-cli against this server and returns its stdout (raw, no formatting).
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_auth(None, args)
    }

    /// Runs redis-cli with a password.
    pub fn cli_auth(&self, password: Option<&str>, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-raw"]);
        if let Some(ca) = &self.tls_ca {
            cmd.args(["--tls", "--cacert", ca]);
        }
        if let Some(pw) = password {
            cmd.env("REDISCLI_AUTH", pw);
        }
        let out = cmd.args(args).output().expect("redis-cli is installed");
        assert!(out.status.success(), "redis-cli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl RedisServer {
    /// The process id (for tests that kill it behind the tool's back).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Calls of `command` (lower case) this server has served, from INFO commandstats.
    pub fn calls(&self, command: &str) -> u64 {
        let stats = self.cli(&["--raw", "info", "commandstats"]);
        let prefix = format!("cmdstat_{command}:calls=");
        stats.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|r| r.split(',').next()).map_or(0, |n| n.parse().unwrap())
    }
}

/// A Redis Cluster of three primaries and three replicas, created with `redis-cli --cluster
/// create` (not with redis-test's own code), ready when every node reports `cluster_state:ok`
/// and agrees on the slot map.
pub struct TestCluster {
    /// The six nodes.
    pub nodes: Vec<RedisServer>,
}

impl TestCluster {
    /// Starts the nodes with `cluster-node-timeout` `node_timeout_ms` and joins them.
    pub fn start(node_timeout_ms: u64) -> TestCluster {
        Self::start_with(node_timeout_ms, &[])
    }

    /// The same with extra config lines for every node (TLS: `Certs::server_config` plus
    /// `tls-cluster yes` and `tls-replication yes`).
    pub fn start_with(node_timeout_ms: u64, extra: &[String]) -> TestCluster {
        let timeout = format!("cluster-node-timeout {node_timeout_ms}");
        let mut conf =
            vec!["cluster-enabled yes", "cluster-config-file nodes.conf", timeout.as_str(), "cluster-replica-validity-factor 0", "repl-diskless-sync-delay 0"];
        conf.extend(extra.iter().map(String::as_str));
        let nodes: Vec<RedisServer> = (0..6).map(|_| RedisServer::start(&conf)).collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        // Bounded: a cluster whose nodes cannot talk would keep redis-cli waiting for them forever.
        let mut create = Command::new("timeout");
        create.args(["60", "redis-cli"]);
        if let Some(ca) = &nodes[0].tls_ca {
            create.args(["--tls", "--cacert", ca]);
        }
        let out =
            create.arg("--cluster").arg("create").args(&addrs).args(["--cluster-replicas", "1", "--cluster-yes"]).output().expect("redis-cli is installed");
        assert!(out.status.success(), "redis-cli --cluster create failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let cluster = TestCluster { nodes };
        // The cluster bus has no event a client can wait on: poll until every node is ready.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = cluster.nodes.iter().all(|n| {
                let info = n.cli(&["cluster", "info"]);
                let repl = n.cli(&["info", "replication"]);
                info.contains("cluster_state:ok") && (repl.contains("role:master") || repl.contains("master_link_status:up"))
            });
            let maps: Vec<String> = cluster.nodes.iter().map(|n| cluster.slot_owners(n)).collect();
            if ready && maps.iter().all(|m| *m == maps[0]) {
                return cluster;
            }
            assert!(std::time::Instant::now() < deadline, "the test cluster was not ready within 30s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `CLUSTER NODES` as seen by `node`: one line per node.
    pub fn cluster_nodes(node: &RedisServer) -> Vec<Vec<String>> {
        node.cli(&["--raw", "cluster", "nodes"]).lines().map(|l| l.split(' ').map(str::to_owned).collect()).collect()
    }

    /// Masters and their slot ranges as `node` sees them, sorted (to compare views).
    fn slot_owners(&self, node: &RedisServer) -> String {
        let mut owners: Vec<String> = Self::cluster_nodes(node)
            .into_iter()
            .filter(|f| f.len() > 8 && f[2].contains("master"))
            .map(|f| format!("{} {}", f[1], f[8..].join(" ")))
            .collect();
        owners.sort();
        owners.join("; ")
    }

    /// The node serving slot 0 (shard 0) and the node replicating it.
    pub fn shard_zero(&self) -> (&RedisServer, &RedisServer) {
        let lines = Self::cluster_nodes(&self.nodes[0]);
        let port_of = |f: &[String]| f[1].split(['@']).next().unwrap().rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let master =
            lines.iter().find(|f| f.len() > 8 && f[2].contains("master") && f[8..].iter().any(|r| r.starts_with("0-"))).expect("a master serves slot 0");
        let master = self.nodes.iter().find(|n| n.port == port_of(master)).unwrap();
        // The replica's own word, not node 0's possibly older view.
        let replica = self
            .nodes
            .iter()
            .find(|n| n.cli(&["--raw", "info", "replication"]).lines().any(|l| l.trim() == format!("master_port:{}", master.port)))
            .expect("shard 0 has a replica");
        (master, replica)
    }

    /// The primaries.
    pub fn masters(&self) -> Vec<&RedisServer> {
        self.nodes.iter().filter(|n| n.cli(&["info", "replication"]).contains("role:master")).collect()
    }

    /// The replicas.
    pub fn replicas(&self) -> Vec<&RedisServer> {
        self.nodes.iter().filter(|n| n.cli(&["info", "replication"]).contains("role:slave")).collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses a JSON report file.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("report {} unreadable: {e}", path.display()));
    serde_json::from_str(&text).expect("the report is JSON")
}

/// Checks a report against the committed report schema.
pub fn assert_report_valid(report: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo().join("schemas/report.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("the report schema compiles");
    let errors: Vec<String> = validator.iter_errors(report).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "report does not match schemas/report.schema.json: {errors:?}");
}

/// Count of an operation in a phase of a report (0 when absent).
pub fn op_count(report: &serde_json::Value, phase: &str, workload: &str, op: &str) -> u64 {
    report["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == phase)
        .flat_map(|p| p["operations"].as_array().into_iter().flatten())
        .filter(|o| o["workload"] == workload && o["operation"] == op)
        .map(|o| o["count"].as_u64().unwrap_or(0))
        .sum()
}

/// A throw-away CA with a server certificate (for 127.0.0.1 and localhost) and a client
/// certificate, made with the openssl command-line tool.
pub struct Certs {
    /// Folder holding ca.crt, server.crt/key, client.crt/key.
    pub dir: PathBuf,
}

impl Certs {
    /// Creates the certificates in a fresh folder.
    pub fn new(name: &str) -> Certs {
        let dir = scratch(name);
        let sh = |script: &str| {
            let out = Command::new("sh").arg("-c").arg(script).current_dir(&dir).output().expect("sh runs");
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        sh(&format!("openssl req -x509 {key} -keyout ca.key -out ca.crt -days 2 -subj '/CN=redis-test test CA'"));
        for (who, ext) in [
            ("server", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost"),
            ("client", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth"),
        ] {
            sh(&format!("openssl req {key} -keyout {who}.key -out {who}.csr -subj '/CN={who}'"));
            sh(&format!(
                "printf '{ext}\n' > {who}.ext && openssl x509 -req -in {who}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {who}.crt -days 2 -extfile {who}.ext"
            ));
        }
        Certs { dir }
    }

    /// A file in the folder.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// redis-server config lines for TLS only on the chosen port; `clients` requires client certificates.
    pub fn server_config(&self, clients: bool) -> Vec<String> {
        vec![
            "port 0".into(),
            "tls-port {port}".into(),
            format!("tls-cert-file {}", self.path("server.crt")),
            format!("tls-key-file {}", self.path("server.key")),
            format!("tls-ca-cert-file {}", self.path("ca.crt")),
            format!("tls-auth-clients {}", if clients { "yes" } else { "no" }),
        ]
    }
}

/// A plain HTTP/1.0 GET on loopback; returns (status code, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, body.to_owned())
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Starts the binary in `cwd` without waiting, both output streams piped (for tests that act on
/// what it prints while it runs).
pub fn spawn(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("REDIS_TEST_ENV_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("the binary starts")
}

/// Whether a scenario starts its own sentinel or cluster deployment (`local: sentinel|cluster`),
/// or a standalone one its maintenance faults move (neither can run against a given server).
pub fn starts_a_topology(file: &Path) -> bool {
    use redis_test::scenario::model::{Endpoint, FaultAction, LocalTopology};
    let s = redis_test::scenario::load(file, &redis_test::scenario::LoadOptions::default()).unwrap();
    matches!(s.target.endpoint, Endpoint::Local(LocalTopology::Sentinel | LocalTopology::Cluster))
        || s.faults.iter().any(|f| matches!(f.action, FaultAction::Maintenance { .. }))
}

/// Runs a shipped scenario shortened (`--time-scale` 0.05; the 7-minute nightly 0.01; a slot
/// migration 0.5) with
/// `extra` arguments, expects exit 0, and checks that every operation its phases mix ran.
/// Returns the report.
pub fn run_shipped(file: &Path, dir: &Path, extra: &[&str]) -> serde_json::Value {
    run_shipped_judged(file, dir, extra, false)
}

/// [`run_shipped`]; with `may_fail_thresholds`, exit 1 is accepted too when it is the thresholds
/// that failed (a client the scenario's thresholds find wanting), and nothing else.
pub fn run_shipped_judged(file: &Path, dir: &Path, extra: &[&str], may_fail_thresholds: bool) -> serde_json::Value {
    let name = file.file_stem().unwrap().to_string_lossy().to_string();
    // A slot migration moves its keys in the time that takes (~0.2 s here): shortened twentyfold,
    // the run's plan ends first and the fault, cut short, fails the run (seen on a fresh clone).
    let migrates = std::fs::read_to_string(file).is_ok_and(|s| s.contains("kind: migrate"));
    let scale = if name == "nightly" {
        "0.01"
    } else if migrates {
        "0.5"
    } else {
        "0.05"
    };
    let json = dir.join(format!("{name}.json"));
    let mut args = vec!["apply", file.to_str().unwrap(), "--time-scale", scale, "--json", json.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args, &[], Duration::from_secs(180));
    // Shortened scenarios on a shared two-core machine: a latency rule is the scenario's promise
    // for the deployment it was written for, not for this one (the nightly's p99 < 10ms at 20 000
    // ops/s was missed at 28 ms while the machine compiled). Every other rule — errors, throughput,
    // lost or duplicated writes, lag — still has to hold.
    let report = match out.code {
        // A client the scenario's thresholds may find wanting can also pass them and still have
        // been stuck through a shortened phase: redis-rs never came back from network-faults'
        // partition (its verdict "not recovered"), ran 6 operations in the 0.2 s `after` phase
        // and none of them a SET, and no rule failed at this time scale (seen on a fresh clone).
        Some(0) if may_fail_thresholds => {
            let report = read_report(&json);
            assert_report_valid(&report);
            return report;
        }
        Some(0) => read_report(&json),
        Some(1) => {
            let report = read_report(&json);
            let failed: Vec<&str> =
                report["thresholds"].as_array().unwrap().iter().filter(|t| t["passed"] == false).map(|t| t["expr"].as_str().unwrap_or_default()).collect();
            assert!(!failed.is_empty(), "{name} {extra:?}: exit 1 without a failed threshold: {}", out.all());
            if may_fail_thresholds {
                // A client stuck through a phase ran none of its operations there: that is what
                // the failed thresholds report.
                assert_report_valid(&report);
                return report;
            }
            let latency = |e: &&str| ["p50", "p90", "p95", "p99", "p999", "max", "mean"].contains(&e.split_whitespace().next().unwrap_or_default());
            let faults_ok = report["faults"].as_array().unwrap().iter().all(|f| f["result"]["ok"] != false);
            assert!(failed.iter().all(latency) && faults_ok, "{name} {extra:?}: {}", out.all());
            eprintln!("{name} {extra:?}: only latency rules failed on this machine: {failed:?}");
            report
        }
        _ => panic!("{name} {extra:?}: exit {:?}: {}", out.code, out.all()),
    };
    assert_report_valid(&report);
    assert_eq!(report["interrupted"], false);
    let plan = redis_test::plan::compile(&redis_test::scenario::load(file, &redis_test::scenario::LoadOptions::default()).unwrap(), 1.0);
    for phase in &plan.phases {
        for mix in &phase.mix {
            let workload = plan.workloads.iter().find(|w| w.name == mix.name).unwrap();
            for op in workload.operations.iter().filter(|o| o.percent > 0.0 || matches!(o.name.as_str(), "PIPELINE" | "EXEC" | "RECEIVE")) {
                let n = op_count(&report, &phase.name, &workload.name, &op.name);
                assert!(n > 0, "{name} {extra:?}: phase {} workload {} operation {} has no operations", phase.name, workload.name, op.name);
            }
        }
    }
    report
}

/// Serialises the tests that start topologies or measure latency, across every test binary and
/// process (cargo-nextest runs each test in a process of its own): hold the guard for the test's
/// length. An exclusive lock on one file: the kernel releases it when the guard is dropped —
/// also on a panic's unwinding — or when the process dies.
#[allow(dead_code)]
pub fn one_at_a_time() -> Turn {
    let path = std::env::temp_dir().join("redis-test-one-at-a-time.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).expect("the lock file opens");
    file.lock().expect("the lock is taken");
    Turn(file, std::time::Instant::now())
}

/// A turn taken with [`one_at_a_time`]; dropping it ends the turn, and notes how long it was held
/// in `turns.log` under the target's scratch folder (the turns' sum bounds the suite's wall time:
/// `sort -t' ' -k2 -n -r target/tmp/turns.log | head` names the longest).
#[allow(dead_code)]
pub struct Turn(#[allow(dead_code)] std::fs::File, std::time::Instant);

impl Drop for Turn {
    fn drop(&mut self) {
        use std::io::Write;
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let line = format!("{test} {:.1}\n", self.1.elapsed().as_secs_f64());
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("turns.log");
        // Still under the lock: one writer at a time. A note for people; failing to write it is no failure.
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Writes `body` to `dir/name` and returns the file's path.
#[allow(dead_code)]
pub fn write_file(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

/// `INFO commandstats` as command name (upper case, `CLIENT|SETNAME`) → calls.
pub fn commandstats(server: &RedisServer) -> std::collections::BTreeMap<String, u64> {
    server
        .cli(&["--raw", "info", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            Some((name.to_uppercase(), rest.split(',').next()?.parse().ok()?))
        })
        .collect()
}

/// Failed operations over every phase and operation of a report.
pub fn total_errors(report: &serde_json::Value) -> u64 {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["operations"].as_array().unwrap())
        .flat_map(|o| o["errors"].as_object().into_iter().flatten())
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}
