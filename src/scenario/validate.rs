//! Semantic checks that a schema cannot express, and the conversion of raw types into the model.
//! Every check runs and every failure is reported, located at the value it is about.

use std::path::Path;
use std::time::Duration;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::*;
use super::node::{DocPath, Node};
use super::raw::*;
use super::schema::suggest;
use crate::units::parse_duration;

/// Largest value size accepted (Redis' own limit is 512 MB; anything near it is a mistake here).
const MAX_VALUE_SIZE: u64 = 64 * 1024 * 1024;
/// Most operations per second one process schedules: its pacer keeps time up to this, and no
/// client core sends more; shards (one process each) go beyond.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Most workers one process runs: each is a task of about 3 KiB while it waits for its turn, and far
/// fewer already saturate a process; shards (one process each) go beyond.
pub const MAX_WORKERS: u32 = 100_000;
/// Smallest pub/sub message: the header carries publisher id, sequence number and send time.
pub const MIN_MESSAGE_SIZE: u64 = 32;
/// Most bytes of values the workers of one process may hold at once: each worker keeps the
/// buffer of its largest round trip, so workers × the largest round trip's values is what a
/// process can come to hold; past this, a scenario would exhaust the machine rather than load
/// the server. Shards (one process each) go beyond.
pub const MAX_VALUES_HELD: u64 = 4 * 1024 * 1024 * 1024;

struct Checker<'a> {
    root: &'a Node,
    diags: &'a mut Diagnostics,
}

impl Checker<'_> {
    fn err(&mut self, path: DocPath, msg: impl Into<String>) {
        let loc = self.root.locate(&path);
        self.diags.push(Diagnostic::at(loc, Some(path), msg));
    }

    /// An error about a mapping key itself (an unknown name), pointing at the key, not its value.
    fn err_key(&mut self, parent: DocPath, key: &str, msg: impl Into<String>) {
        let loc = self.root.locate_key(&parent, key);
        self.diags.push(Diagnostic::at(loc, Some(parent.key(key)), msg));
    }

    fn positive(&mut self, path: DocPath, d: Duration) -> Duration {
        if d.is_zero() {
            self.err(path, "must be longer than zero");
        }
        d
    }
}

fn p(key: &str) -> DocPath {
    DocPath::root().key(key)
}

/// Checks a schema-valid raw scenario and builds the model. `dir` resolves relative file paths.
pub fn build(raw: RawScenario, root: &Node, file: &Path, diags: &mut Diagnostics) -> Option<Scenario> {
    let before = diags.0.len();
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut c = Checker { root, diags };
    let mut target = target(&mut c, &raw.target, dir);
    let connections = connections(&mut c, &raw.connections);
    let key_prefix = raw.keyspace.prefix.clone();
    check_prefix(&mut c, p("keyspace").key("prefix"), &key_prefix);
    let workloads = workloads(&mut c, &raw);
    let phases = phases(&mut c, &raw, &workloads);
    values_held(&mut c, &workloads, &phases);
    let faults = faults(&mut c, &raw, &phases, &target, dir);
    // A network or maintenance fault on a local target brings the proxy along; a maintenance
    // fault needs it RESP-aware.
    if let Some(t) = target.as_mut() {
        t.resp_aware_proxy = faults.iter().any(|f| matches!(f.action, FaultAction::Maintenance { .. } | FaultAction::Notify { .. }));
        if matches!(t.endpoint, Endpoint::Local(_)) {
            t.proxy |= t.resp_aware_proxy || faults.iter().any(|f| matches!(f.action, FaultAction::Network { .. } | FaultAction::Reset { .. }));
        }
    }
    maintenance_options(&mut c, &connections, target.as_ref());
    redis_rs_limits(&mut c, connections.client, target.as_ref());
    let thresholds = thresholds(&mut c, &raw, &phases, &workloads, &faults);
    let output = output(&mut c, &raw.output);
    let metrics = metrics(&mut c, &raw.metrics, dir);
    if c.diags.0.len() > before {
        return None;
    }
    Some(Scenario {
        name: raw.name,
        description: raw.description,
        file: file.to_path_buf(),
        target: target?,
        connections,
        key_prefix,
        workloads,
        phases,
        faults,
        thresholds,
        output,
        metrics,
        cleanup: raw.cleanup,
    })
}

/// The most bytes of values one round trip of the workload writes, and how: its largest value
/// times the values a round trip carries.
fn trip_values(w: &Workload) -> (u64, String) {
    let value = w.keyspace.value_size.1;
    let size = crate::units::ByteSize(value);
    match (&w.kind, &w.custom) {
        (WorkloadKind::HighThroughput(h), _) => (value.saturating_mul(u64::from(h.pipeline)), format!("pipeline {} × value_size {size}", h.pipeline)),
        (WorkloadKind::Pipeline(p), _) => (value.saturating_mul(u64::from(p.depth)), format!("depth {} × value_size {size}", p.depth)),
        (WorkloadKind::Pubsub(p), _) => (p.message_size.0, format!("message_size {}", p.message_size)),
        (WorkloadKind::Stream(st), _) => (st.message_size.0, format!("message_size {}", st.message_size)),
        (WorkloadKind::Custom(_), Some(cc)) => {
            let data = |t: &crate::scenario::template::Template| -> u64 {
                let pieces = t.args.iter().filter_map(|a| match a {
                    crate::scenario::template::ArgTemplate::Pieces(p) => Some(p),
                    crate::scenario::template::ArgTemplate::Range(..) => None,
                });
                pieces.flatten().fold(0u64, |sum, p| match p {
                    crate::scenario::template::Piece::Data(n) => sum.saturating_add(n.unwrap_or(value)),
                    _ => sum,
                })
            };
            let each =
                if cc.sequence { cc.templates.iter().map(data).fold(0u64, u64::saturating_add) } else { cc.templates.iter().map(data).max().unwrap_or(0) };
            (
                each.saturating_mul(u64::from(cc.depth)),
                format!("depth {} × {} of data per {}", cc.depth, crate::units::ByteSize(each), if cc.sequence { "sequence" } else { "command" }),
            )
        }
        _ => (value, format!("value_size {size}")),
    }
}

/// Refuses a scenario whose workers could hold more than [`MAX_VALUES_HELD`] of values at once,
/// at the phase with the most workers.
fn values_held(c: &mut Checker<'_>, workloads: &[Workload], phases: &[Phase]) {
    let Some((name, (trip, how))) = workloads.iter().map(|w| (&w.name, trip_values(w))).max_by_key(|(_, (bytes, _))| *bytes) else { return };
    let Some((i, workers)) = phases.iter().map(|ph| ph.workers.0.max(ph.workers.1)).enumerate().max_by_key(|(_, n)| *n) else { return };
    let held = trip.saturating_mul(u64::from(workers));
    if held > MAX_VALUES_HELD {
        c.err(
            p("phases").index(i).key("workers"),
            format!(
                "{workers} workers, each holding a round trip of up to {} of values (workload `{name}`: {how}), could hold {}: more than the {} one process holds; use fewer workers, smaller values or shorter round trips, or shards",
                crate::units::ByteSize(trip),
                crate::units::ByteSize(held),
                crate::units::ByteSize(MAX_VALUES_HELD)
            ),
        );
    }
}

fn check_prefix(c: &mut Checker<'_>, path: DocPath, prefix: &str) {
    if prefix.is_empty() {
        c.err(path, "the key prefix must not be empty: cleanup removes every key under it");
    } else if prefix.contains(['*', '?', '[', ']', '\\']) || prefix.chars().any(char::is_whitespace) {
        c.err(path, format!("key prefix `{prefix}` must not contain glob characters (* ? [ ] \\) or spaces: cleanup matches keys with it"));
    }
}

// ---------------------------------------------------------------------------------------------

/// Parsed parts of a `redis://` URL.
#[derive(Debug, Default, PartialEq)]
pub struct RedisUrl {
    /// `rediss://`.
    pub tls: bool,
    /// User from the URL.
    pub username: Option<String>,
    /// Password from the URL.
    pub password: Option<String>,
    /// Address.
    pub addr: Option<HostPort>,
    /// Database from the path.
    pub db: Option<u32>,
}

/// Parses `redis://[user[:password]@]host[:port][/db]` (and `rediss://`); percent-escapes are decoded.
pub fn parse_redis_url(url: &str) -> Result<RedisUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("redis://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("rediss://") {
        (true, r)
    } else {
        return Err("the URL must start with `redis://` or `rediss://`".into());
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut out = RedisUrl { tls, ..Default::default() };
    if let Some(u) = userinfo {
        let (user, pass) = match u.split_once(':') {
            Some((user, pass)) => (user, Some(pass)),
            None => (u, None),
        };
        if !user.is_empty() {
            out.username = Some(percent_decode(user)?);
        }
        out.password = pass.map(percent_decode).transpose()?;
    }
    out.addr = Some(parse_host_port(hostport, 6379)?);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !path.is_empty() {
        out.db = Some(path.parse().map_err(|_| format!("`/{path}` is not a database number"))?);
    }
    Ok(out)
}

/// Parses `host[:port]`, `[v6]:port`; a missing port is `default_port`.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<HostPort, String> {
    let s = s.strip_prefix("redis://").unwrap_or(s);
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or("unclosed `[` in address")?;
        (h, tail.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') => (h, Some(port)),
            _ => (s, None),
        }
    };
    if host.is_empty() {
        return Err("the address has no host".into());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{p}` is not a TCP port (1-65535)"))?,
        None => default_port,
    };
    Ok(HostPort { host: host.to_owned(), port })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated %-escape in URL")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "invalid %-escape in URL")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "URL escapes are not UTF-8".into())
}

fn target(c: &mut Checker<'_>, t: &RawTarget, dir: &Path) -> Option<Target> {
    let tp = p("target");
    let mut username = None;
    let mut password = None;
    let mut db = None;
    let mut tls_from_url = false;
    let endpoint = match (&t.url, t.local) {
        (Some(_), Some(_)) => {
            c.err(tp.key("local"), "give either `url` or `local`, not both");
            None
        }
        // A sentinel target is found through its sentinels; a `url` then only carries the data
        // nodes' credentials, database and TLS, and may be left out.
        (None, None) if t.mode == Mode::Sentinel && t.sentinel.is_some() => Some(Endpoint::Remote(Vec::new())),
        (None, None) => {
            c.err(tp.clone(), "set `url` (an existing deployment) or `local` (one redis-test starts), or pass `--target URL`");
            None
        }
        (None, Some(local)) => {
            let implied = match local {
                LocalTopology::Standalone => Mode::Standalone,
                LocalTopology::Cluster => Mode::Cluster,
                LocalTopology::Sentinel => Mode::Sentinel,
            };
            if t.mode != implied && t.mode != Mode::Standalone {
                c.err(
                    tp.key("mode"),
                    format!("`mode` contradicts `local`; a local {implied:?} deployment has mode `{}`", format!("{implied:?}").to_lowercase()),
                );
            }
            if t.tls.is_some() {
                c.err(tp.key("tls"), "TLS is not available for local deployments; use `url: rediss://…`");
            }
            Some(Endpoint::Local(local))
        }
        (Some(url), None) => match parse_redis_url(url) {
            Ok(u) => {
                username = u.username;
                password = u.password;
                db = u.db;
                tls_from_url = u.tls;
                let mut addrs: Vec<HostPort> = u.addr.into_iter().collect();
                for (i, n) in t.nodes.iter().enumerate() {
                    match parse_host_port(n, 6379) {
                        Ok(a) => addrs.push(a),
                        Err(e) => c.err(tp.key("nodes").index(i), e),
                    }
                }
                Some(Endpoint::Remote(addrs))
            }
            Err(e) => {
                c.err(tp.key("url"), e);
                None
            }
        },
    };
    let mode = match t.local {
        Some(LocalTopology::Cluster) => Mode::Cluster,
        Some(LocalTopology::Sentinel) => Mode::Sentinel,
        _ => t.mode,
    };
    if !t.nodes.is_empty() && mode != Mode::Cluster {
        c.err(tp.key("nodes"), "`nodes` lists cluster seed nodes; it needs `mode: cluster`");
    }
    let sentinel = match (&t.sentinel, mode, t.local) {
        (Some(s), Mode::Sentinel, None) => {
            let mut nodes = Vec::new();
            for (i, n) in s.nodes.iter().enumerate() {
                match parse_host_port(n, 26379) {
                    Ok(a) => nodes.push(a),
                    Err(e) => c.err(tp.key("sentinel").key("nodes").index(i), e),
                }
            }
            Some(Sentinel {
                master_name: s.master_name.clone(),
                nodes,
                username: non_empty(s.username.clone()),
                password: non_empty(s.password.clone()).map(Secret::new),
            })
        }
        (None, Mode::Sentinel, None) => {
            c.err(tp.clone(), "`mode: sentinel` needs a `sentinel` section with `master_name` and `nodes`");
            None
        }
        (Some(_), _, _) => {
            c.err(tp.key("sentinel"), "the `sentinel` section needs `mode: sentinel` with a `url` (local sentinel deployments configure themselves)");
            None
        }
        (None, _, _) => None,
    };
    if t.db.is_some_and(|d| d > 0) && mode == Mode::Cluster {
        c.err(tp.key("db"), "Redis Cluster only has database 0");
    }
    if t.read_from_replicas && mode == Mode::Standalone {
        c.err(tp.key("read_from_replicas"), "replica reads need `mode: cluster` or `mode: sentinel`");
    }
    let tls = match &t.tls {
        Some(raw) => Some(tls(c, raw, dir)),
        None if tls_from_url => Some(Tls { ca: None, client_cert: None, server_name: None, insecure: false }),
        None => None,
    };
    Some(Target {
        endpoint: endpoint?,
        mode,
        sentinel,
        username: non_empty(t.username.clone()).or(non_empty(username)),
        password: non_empty(t.password.clone()).or(non_empty(password)).map(Secret::new),
        db: t.db.or(db).unwrap_or(0),
        protocol: t.protocol,
        tls,
        read_from_replicas: t.read_from_replicas,
        proxy: t.proxy,
        resp_aware_proxy: false,
    })
}

/// `maintenance_notifications: on` needs RESP3 (the notifications are push messages).
fn maintenance_options(c: &mut Checker<'_>, connections: &Connections, target: Option<&Target>) {
    use super::raw::MaintenanceMode;
    if connections.maintenance_notifications == MaintenanceMode::On && target.is_some_and(|t| t.protocol != Protocol::Resp3) {
        c.err(
            p("connections").key("maintenance_notifications"),
            "maintenance notifications are RESP3 push messages: `on` needs `target.protocol: resp3` (`auto` asks only on RESP3 connections)",
        );
    }
}

/// `password: ${REDIS_PASSWORD:-}` with the variable unset means "no password", not an empty one.
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn tls(c: &mut Checker<'_>, t: &RawTls, dir: &Path) -> Tls {
    let tp = p("target").key("tls");
    let mut file = |key: &str, value: &Option<String>| {
        value.as_ref().map(|v| {
            let path = dir.join(v);
            if !path.is_file() {
                c.err(tp.key(key), format!("file `{}` does not exist", path.display()));
            }
            path
        })
    };
    let ca = file("ca", &t.ca);
    let cert = file("cert", &t.cert);
    let key = file("key", &t.key);
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            c.err(tp.key("cert"), "a client certificate needs its `key`");
            None
        }
        (None, Some(_)) => {
            c.err(tp.key("key"), "a client key needs its `cert`");
            None
        }
    };
    Tls { ca, client_cert, server_name: t.server_name.clone(), insecure: t.insecure }
}

/// What the redis-rs client has no setting for is refused, not silently ignored.
fn redis_rs_limits(c: &mut Checker<'_>, client: Client, target: Option<&Target>) {
    let Some(t) = target.filter(|_| client == Client::RedisRs) else { return };
    if t.tls.as_ref().is_some_and(|tls| tls.server_name.is_some()) {
        c.err(
            p("target").key("tls").key("server_name"),
            "`server_name` has no equivalent in redis-rs (it verifies the host it connects to): remove it, or use `connections.client: native`",
        );
    }
    if t.read_from_replicas && t.mode == Mode::Sentinel {
        c.err(
            p("target").key("read_from_replicas"),
            "replica reads on a sentinel target have no equivalent in redis-rs's pooled sentinel client: remove it, or use `connections.client: native`",
        );
    }
    if t.proxy && t.mode == Mode::Sentinel {
        c.err(
            p("target"),
            "redis-rs's sentinel client connects wherever the sentinels point it, so the fault proxy cannot stand in between (network faults and `proxy: true` on a sentinel target): use `connections.client: native`",
        );
    }
}

fn connections(c: &mut Checker<'_>, r: &RawConnections) -> Connections {
    let cp = p("connections");
    let rp = cp.key("retry");
    if r.retry.max_backoff < r.retry.initial_backoff {
        c.err(rp.key("max_backoff"), format!("must not be shorter than `initial_backoff` ({})", r.retry.initial_backoff));
    }
    Connections {
        client: r.client,
        pools: r.pools,
        per_pool: r.per_pool,
        connect_timeout: c.positive(cp.key("connect_timeout"), r.connect_timeout.get()),
        acquire_timeout: c.positive(cp.key("acquire_timeout"), r.acquire_timeout.get()),
        command_timeout: c.positive(cp.key("command_timeout"), r.command_timeout.get()),
        health_check_interval: c.positive(cp.key("health_check_interval"), r.health_check_interval.get()),
        retry: Retry {
            attempts: r.retry.attempts,
            initial_backoff: r.retry.initial_backoff.get(),
            max_backoff: r.retry.max_backoff.get(),
            multiplier: r.retry.multiplier,
            jitter: r.retry.jitter,
            retry_writes: r.retry.retry_writes,
        },
        maintenance_notifications: r.maintenance_notifications,
        relaxed_timeout: c.positive(cp.key("relaxed_timeout"), r.relaxed_timeout.get()),
        moving_endpoint_type: r.moving_endpoint_type,
    }
}

// ---------------------------------------------------------------------------------------------

fn common(w: &RawWorkload) -> (f64, &RawKeyspaceOverride) {
    match w {
        RawWorkload::Basic(s) => (s.weight, &s.keyspace),
        RawWorkload::HighThroughput(s) => (s.weight, &s.keyspace),
        RawWorkload::List(s) => (s.weight, &s.keyspace),
        RawWorkload::Set(s) => (s.weight, &s.keyspace),
        RawWorkload::SortedSet(s) => (s.weight, &s.keyspace),
        RawWorkload::Hash(s) => (s.weight, &s.keyspace),
        RawWorkload::Pipeline(s) => (s.weight, &s.keyspace),
        RawWorkload::Pubsub(s) => (s.weight, &s.keyspace),
        RawWorkload::Custom(s) => (s.weight, &s.keyspace),
        RawWorkload::Stream(s) => (s.weight, &s.keyspace),
    }
}

fn workloads(c: &mut Checker<'_>, raw: &RawScenario) -> Vec<Workload> {
    let mut out = Vec::new();
    for (name, w) in &raw.workloads {
        let wp = p("workloads").key(name);
        if !name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.')) {
            c.err(wp.clone(), format!("workload name `{name}` may only use letters, digits, `_`, `-` and `.` (it becomes part of keys and metric labels)"));
        }
        let (weight, ks) = common(w);
        let keyspace = keyspace(c, &raw.keyspace, ks, name, &wp.key("keyspace"));
        match w {
            RawWorkload::Basic(b) if b.read_ratio + b.delete_ratio + b.incr_ratio > 1.0 + 1e-9 => {
                c.err(
                    wp.key("read_ratio"),
                    format!(
                        "read_ratio + delete_ratio + incr_ratio = {:.3}; they must add up to at most 1 (SET gets the rest)",
                        b.read_ratio + b.delete_ratio + b.incr_ratio
                    ),
                );
            }
            RawWorkload::Basic(BasicSpec { verify: true, .. }) | RawWorkload::Hash(HashSpec { verify: true, .. }) if keyspace.ttl.is_some() => {
                c.err(wp.key("verify"), "`verify` cannot be combined with a keyspace `ttl`: expired keys would count as lost writes");
            }
            RawWorkload::Pubsub(ps) if ps.message_size.0 < MIN_MESSAGE_SIZE => {
                c.err(wp.key("message_size"), format!("must be at least {MIN_MESSAGE_SIZE}B: each message carries a header"));
            }
            RawWorkload::Hash(h) if h.fields < 2 => {
                let w = h.commands.weights();
                let has = |names: &[&str]| w.iter().any(|(n, x)| names.contains(n) && *x > 0.0);
                if has(&["HINCRBY"]) && has(&["HSET", "HGET", "HMGET", "HDEL"]) {
                    c.err(wp.key("fields"), "must be at least 2 when HINCRBY runs with other commands: counters get fields of their own (a hash never holds more than `fields` fields)");
                }
            }
            RawWorkload::Pubsub(ps) if ps.message_size.0 > MAX_VALUE_SIZE => {
                c.err(wp.key("message_size"), format!("must be at most {}", crate::units::ByteSize(MAX_VALUE_SIZE)));
            }
            RawWorkload::Stream(st) => stream_options(c, st, &wp, raw),
            _ => {}
        }
        if matches!(w, RawWorkload::List(_) | RawWorkload::Set(_) | RawWorkload::SortedSet(_) | RawWorkload::Hash(_) | RawWorkload::Pipeline(_)) {
            let total: f64 = w.operations().iter().map(|o| o.weight).sum();
            if total <= 0.0 {
                c.err(wp.key("commands"), "at least one command needs a weight above zero");
            }
        }
        let custom = match w {
            RawWorkload::Custom(spec) => custom_commands(c, spec, &wp, if ks.prefix.is_some() { &keyspace.prefix } else { &raw.keyspace.prefix }),
            _ => None,
        };
        out.push(Workload { name: name.clone(), weight, keyspace, kind: w.clone(), custom });
    }
    out
}

/// A `stream` workload's options that a schema cannot check.
fn stream_options(c: &mut Checker<'_>, st: &StreamSpec, wp: &DocPath, raw: &RawScenario) {
    if st.message_size.0 < MIN_MESSAGE_SIZE {
        c.err(wp.key("message_size"), format!("must be at least {MIN_MESSAGE_SIZE}B: each entry carries a header"));
    } else if st.message_size.0 > MAX_VALUE_SIZE {
        c.err(wp.key("message_size"), format!("must be at most {}", crate::units::ByteSize(MAX_VALUE_SIZE)));
    }
    if st.consumers < st.streams {
        c.err(
            wp.key("consumers"),
            format!("{} consumers for {} streams would leave streams unread: consumer N reads stream N modulo `streams`", st.consumers, st.streams),
        );
    }
    if st.group.is_empty() || st.group.chars().any(|ch| ch.is_control() || ch.is_whitespace()) {
        c.err(wp.key("group"), "a group name needs at least one character and no spaces or control characters");
    }
    let timeout = raw.connections.command_timeout.get();
    if st.block.get() >= timeout {
        c.err(
            wp.key("block"),
            format!(
                "must be shorter than `connections.command_timeout` ({}): a blocked read that outlasts it fails as a timeout",
                crate::units::format_duration(timeout)
            ),
        );
    }
    if st.process_time.is_some_and(|w| w.get() >= st.claim_after.get()) {
        c.err(
            wp.key("process_time"),
            format!(
                "must be shorter than `claim_after` ({}): entries would be claimed while their consumer still works on them",
                crate::units::format_duration(st.claim_after.get())
            ),
        );
    }
    if st.claim_after.get() < std::time::Duration::from_millis(10) {
        c.err(wp.key("claim_after"), "must be at least 10ms: a shorter wait claims entries other consumers are still working on");
    }
}

/// Reads a `custom` workload's scripts and templates; every mistake located at its value.
fn custom_commands(c: &mut Checker<'_>, spec: &CustomSpec, wp: &DocPath, key_prefix: &str) -> Option<std::sync::Arc<CustomCommands>> {
    let before = c.diags.0.len();
    for (name, body) in &spec.scripts {
        if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-')) {
            c.err_key(wp.key("scripts"), name, format!("script name `{name}` may only use letters, digits, `_` and `-`"));
        }
        if body.trim().is_empty() {
            c.err(wp.key("scripts").key(name), "a script needs a body");
        }
    }
    let script_names: Vec<&str> = spec.scripts.keys().map(String::as_str).collect();
    let mut templates: Vec<super::template::Template> = Vec::new();
    for (i, t) in spec.commands.iter().enumerate() {
        let tp = wp.key("commands").index(i);
        let at = c.root.locate(&tp).to_string();
        // The arguments, and where argument j is written (one line, or an element of `args`).
        type ArgPath = Box<dyn Fn(usize) -> DocPath>;
        let (args, arg_path): (Vec<Vec<u8>>, ArgPath) = match (&t.command, &t.args) {
            (Some(line), None) => match super::template::split_command_line(line) {
                Ok(a) => {
                    let p = tp.key("command");
                    (a, Box::new(move |_| p.clone()))
                }
                Err(e) => {
                    c.err(tp.key("command"), format!("cannot split the command line: {e}"));
                    continue;
                }
            },
            (None, Some(a)) => {
                let p = tp.key("args");
                (a.iter().map(|s| s.as_bytes().to_vec()).collect(), Box::new(move |j| p.index(j)))
            }
            _ => {
                c.err(tp.clone(), "give the command either as `command` (a line) or as `args` (a list), not both or neither");
                continue;
            }
        };
        if t.weight.is_some() && spec.sequence {
            c.err(tp.key("weight"), "a sequence sends every command once per round trip; weights mean nothing there");
        }
        match super::template::parse(&args, t.name.as_deref(), t.weight, t.keys.clone(), &script_names, at) {
            Ok(tpl) => {
                if let Some(other) = templates.iter().position(|o| o.name == tpl.name) {
                    c.err(tp.clone(), format!("commands {other} and {i} both count as operation `{}`: give one a `name` of its own", tpl.name));
                } else if spec.batch_name() == Some(tpl.name.as_str()) {
                    c.err(tp.clone(), format!("`{}` is the name of this workload's round trips; give the command another `name`", tpl.name));
                }
                templates.push(tpl);
            }
            Err(e) => match e.at {
                super::template::ErrorAt::Arg(j) => c.err(arg_path(j), e.message),
                super::template::ErrorAt::Name => c.err(tp.key("name"), e.message),
                super::template::ErrorAt::Keys => c.err(tp.key("keys"), e.message),
                super::template::ErrorAt::Command => c.err(arg_path(0), e.message),
            },
        }
    }
    if !spec.sequence && spec.commands.iter().all(|t| t.weight.unwrap_or(1.0) <= 0.0) {
        c.err(wp.key("commands"), "at least one command needs a weight above zero");
    }
    (c.diags.0.len() == before).then(|| {
        std::sync::Arc::new(CustomCommands {
            templates,
            scripts: spec.scripts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            sequence: spec.sequence,
            transaction: spec.transaction,
            depth: spec.depth,
            key_prefix: key_prefix.to_owned(),
        })
    })
}

fn keyspace(c: &mut Checker<'_>, base: &RawKeyspace, o: &RawKeyspaceOverride, name: &str, kp: &DocPath) -> Keyspace {
    let prefix = match &o.prefix {
        Some(pre) => {
            if !pre.starts_with(&base.prefix) {
                c.err(kp.key("prefix"), format!("`{pre}` must start with the scenario's key prefix `{}`, so that cleanup finds its keys", base.prefix));
            }
            check_prefix(c, kp.key("prefix"), pre);
            pre.clone()
        }
        None => format!("{}{name}:", base.prefix),
    };
    let (size_path, size) = match &o.value_size {
        Some(v) => (kp.key("value_size"), v),
        None => (p("keyspace").key("value_size"), &base.value_size),
    };
    let value_size = match size {
        ValueSize::Fixed(s) => (s.0, s.0),
        ValueSize::Range(r) => {
            if r.min > r.max {
                c.err(size_path.key("min"), format!("`min` ({}) is larger than `max` ({})", r.min, r.max));
            }
            (r.min.0, r.max.0)
        }
    };
    if value_size.1 > MAX_VALUE_SIZE {
        c.err(size_path, format!("values larger than {} are not supported", crate::units::ByteSize(MAX_VALUE_SIZE)));
    }
    let ttl = o.ttl.or(base.ttl).map(|t| t.get());
    if ttl.is_some_and(|t| t < Duration::from_millis(1)) {
        c.err(if o.ttl.is_some() { kp.key("ttl") } else { p("keyspace").key("ttl") }, "a TTL must be at least 1ms");
    }
    if let Some(Distribution::Gaussian { stddev, .. }) = o.distribution.as_ref().or(Some(&base.distribution))
        && *stddev <= 0.0
    {
        c.err(kp.key("distribution"), "a gaussian distribution needs `stddev` above zero");
    }
    Keyspace { prefix, keys: o.keys.unwrap_or(base.keys), distribution: o.distribution.clone().unwrap_or_else(|| base.distribution.clone()), value_size, ttl }
}

// ---------------------------------------------------------------------------------------------

fn phases(c: &mut Checker<'_>, raw: &RawScenario, workloads: &[Workload]) -> Vec<Phase> {
    let mut out: Vec<Phase> = Vec::new();
    let mut total = Duration::ZERO;
    for (i, ph) in raw.phases.iter().enumerate() {
        let pp = p("phases").index(i);
        if let Some(first) = out.iter().position(|o| o.name == ph.name) {
            c.err(pp.key("name"), format!("phase name `{}` is already used by phase {first}", ph.name));
        }
        let duration = c.positive(pp.key("duration"), ph.duration.get());
        // Reported once, at the phase that crosses the bound.
        let before = total;
        total = total.saturating_add(duration);
        if total > crate::units::MAX_DURATION && before <= crate::units::MAX_DURATION {
            c.err(
                pp.key("duration"),
                format!(
                    "the phases up to this one last {}: more than {}, the longest run redis-test plans (365 days)",
                    crate::units::format_duration(total),
                    crate::units::format_duration(crate::units::MAX_DURATION)
                ),
            );
        }
        let workers = ph.workers.ends();
        for (end, v) in [("from", workers.0), ("to", workers.1)] {
            let at = if matches!(ph.workers, Ramp::Constant(_)) { pp.key("workers") } else { pp.key("workers").key(end) };
            if v == 0 {
                c.err(at, "needs at least 1 worker");
            } else if v > MAX_WORKERS {
                c.err(at, format!("at most {MAX_WORKERS} workers per process: more cost memory without adding load one process can send; run several processes (shards) to go beyond"));
            }
        }
        let rate = ph.rate.map(|r| {
            let (from, to) = r.ends();
            for (end, v) in [("from", from), ("to", to)] {
                let at = if matches!(r, Ramp::Constant(_)) { pp.key("rate") } else { pp.key("rate").key(end) };
                if !v.is_finite() || v < 0.0 {
                    c.err(at, "a rate must be zero or more operations per second");
                } else if v > MAX_RATE {
                    c.err(
                        at,
                        format!(
                            "at most {MAX_RATE} operations per second: one redis-test process cannot schedule more; run several processes (shards) to go beyond"
                        ),
                    );
                } else if v == 0.0 && matches!(r, Ramp::Constant(_)) {
                    c.err(at, "a constant rate of 0 sends nothing; remove `rate` for closed-loop load");
                }
            }
            if from == 0.0 && to == 0.0 && matches!(r, Ramp::Linear { .. }) {
                c.err(pp.key("rate"), "a ramp from 0 to 0 sends nothing");
            }
            (from, to)
        });
        let mix = match &ph.mix {
            Some(m) => {
                for (name, w) in m {
                    if !workloads.iter().any(|wl| &wl.name == name) {
                        let hint = suggest(name, workloads.iter().map(|w| w.name.as_str())).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                        c.err_key(pp.key("mix"), name, format!("no workload named `{name}`{hint}"));
                    }
                    if !w.is_finite() || *w < 0.0 {
                        c.err(pp.key("mix").key(name), "a weight must be zero or more");
                    }
                }
                if m.values().sum::<f64>() <= 0.0 {
                    c.err(pp.key("mix"), "the weights add up to zero; give at least one workload a weight above zero");
                }
                workloads.iter().filter_map(|w| m.get(&w.name).filter(|x| **x > 0.0).map(|x| (w.name.clone(), *x))).collect()
            }
            None => {
                if workloads.iter().map(|w| w.weight).sum::<f64>() <= 0.0 {
                    c.err(pp.clone(), "every workload has weight 0; give this phase a `mix` or a workload a weight");
                }
                workloads.iter().filter(|w| w.weight > 0.0).map(|w| (w.name.clone(), w.weight)).collect()
            }
        };
        out.push(Phase { name: ph.name.clone(), kind: ph.kind, duration, workers, rate, mix });
    }
    out
}

fn faults(c: &mut Checker<'_>, raw: &RawScenario, phases: &[Phase], target: &Option<Target>, dir: &Path) -> Vec<Fault> {
    let total: Duration = phases.iter().map(|p| p.duration).sum();
    let proxied = target.as_ref().is_some_and(|t| t.proxy)
        || raw.faults.iter().any(|f| matches!(fault_parts(f).3, FaultAction::Network { .. } | FaultAction::Reset { .. }));
    let mut out = Vec::new();
    let mut placed = Vec::new();
    for (i, f) in raw.faults.iter().enumerate() {
        let fp = p("faults").index(i);
        let (name, at, phase, mut action) = fault_parts(f);
        // A binary named by a path is found next to the scenario file; a bare name on PATH.
        if let FaultAction::RollingUpgrade { binary: Some(b) } = &mut action
            && b.components().count() > 1
            && b.is_relative()
        {
            *b = dir.join(&*b);
        }
        let (start, window) = match phase {
            Some(ph) => match phases.iter().position(|p| p.name == *ph) {
                Some(idx) => (phases[..idx].iter().map(|p| p.duration).sum(), phases[idx].duration),
                None => {
                    let hint = suggest(ph, phases.iter().map(|p| p.name.as_str())).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                    c.err(fp.key("phase"), format!("no phase named `{ph}`{hint}"));
                    continue;
                }
            },
            None => (Duration::ZERO, total),
        };
        if at.get() >= window {
            let within = phase.as_ref().map_or("the run".to_owned(), |ph| format!("phase `{ph}`"));
            c.err(fp.key("at"), format!("offset {at} is not inside {within}, which lasts {}", crate::units::format_duration(window)));
        }
        if let FaultAction::Network { fault: NetworkFault::Bandwidth { bytes_per_second: 0 }, .. } = &action {
            c.err(fp.key("bytes_per_second"), "must be at least 1B: a link that carries nothing is a `blackhole`");
        }
        // A process fault on a node the local deployment does not have would fail only when its
        // offset comes, at the end of a long run perhaps.
        if let (FaultAction::Restart { node, .. } | FaultAction::Freeze { node, .. }, Some(t)) = (&action, target.as_ref())
            && matches!(t.endpoint, Endpoint::Local(_))
            && let Some(count) = data_nodes(t)
            && *node >= count
        {
            c.err(fp.key("node"), format!("the target has nodes 0..{}, not node {node}", count - 1));
        }
        match &action {
            FaultAction::ClientPause { duration, .. }
            | FaultAction::DebugSleep { duration }
            | FaultAction::Freeze { duration, .. }
            | FaultAction::Network { duration, .. }
                if duration.is_zero() =>
            {
                c.err(fp.key("duration"), "must be longer than zero");
            }
            FaultAction::Restart { .. } | FaultAction::Freeze { .. } if target.as_ref().is_some_and(|t| !matches!(t.endpoint, Endpoint::Local(_))) => {
                c.err(
                    fp.key("action"),
                    format!("`{}` needs a local target (`target.local`): redis-test can only signal processes it started", fault_kind(&action)),
                );
            }
            FaultAction::Restart { new_port: true, .. } if target.as_ref().is_some_and(|t| t.mode == Mode::Standalone) => {
                c.err(
                    fp.key("new_port"),
                    "a standalone server has no way to tell its clients a new address: `new_port` needs `local: cluster` or `local: sentinel`",
                );
            }
            FaultAction::Restart { new_port: true, .. } if proxied => {
                c.err(
                    fp.key("new_port"),
                    "a node on a new port has left its fault proxy behind: `new_port` cannot be combined with network faults or `target.proxy`",
                );
            }
            FaultAction::Network { .. } | FaultAction::Reset { .. } => {
                let node = match &action {
                    FaultAction::Network { node, .. } | FaultAction::Reset { node } => *node,
                    _ => None,
                };
                if let Some(t) = target.as_ref() {
                    if !t.proxy && !matches!(t.endpoint, Endpoint::Local(_)) {
                        c.err(fp.key("action"), format!("`{}` runs through the fault proxy: set `target.proxy: true`", fault_kind(&action)));
                    }
                    if let (Some(n), Some(count)) = (node, data_nodes(t))
                        && n >= count
                    {
                        c.err(fp.key("node"), format!("the target has nodes 0..{}, not node {n}", count - 1));
                    }
                }
            }
            FaultAction::RollingUpgrade { binary } => {
                if target.as_ref().is_some_and(|t| !matches!(t.endpoint, Endpoint::Local(LocalTopology::Cluster | LocalTopology::Sentinel))) {
                    c.err(
                        fp.key("action"),
                        "`rolling_upgrade` needs `target.local: cluster` or `target.local: sentinel`: redis-test restarts the nodes it started",
                    );
                }
                if let Some(b) = binary.as_ref().filter(|b| b.components().count() > 1 && !b.is_file()) {
                    c.err(fp.key("binary"), format!("no redis-server at {}", b.display()));
                }
            }
            FaultAction::Failover { .. } if target.as_ref().is_some_and(|t| t.mode == Mode::Standalone) => {
                c.err(fp.key("action"), "`failover` needs a cluster or sentinel target");
            }
            FaultAction::Shell { timeout, .. } if timeout.is_zero() => c.err(fp.key("timeout"), "must be longer than zero"),
            FaultAction::Maintenance { notice, .. } | FaultAction::Notify { notice, .. } if notice.is_zero() => {
                c.err(fp.key("notice"), "must be longer than zero");
            }
            FaultAction::Notify { messages, .. } if messages.is_empty() => c.err(fp.key("messages"), "name at least one message"),
            FaultAction::Maintenance { kind: MaintenanceKind::Move, .. }
                if target.as_ref().is_some_and(|t| !matches!(t.endpoint, Endpoint::Local(LocalTopology::Standalone))) =>
            {
                c.err(fp.key("kind"), "`kind: move` moves a node redis-test started: it needs `target.local: standalone`");
            }
            FaultAction::Maintenance { kind: kind @ (MaintenanceKind::Failover | MaintenanceKind::Migrate), shard, slots, .. } => {
                let local = |topologies: &[LocalTopology]| target.as_ref().is_none_or(|t| matches!(&t.endpoint, Endpoint::Local(l) if topologies.contains(l)));
                if *kind == MaintenanceKind::Failover && !local(&[LocalTopology::Cluster, LocalTopology::Sentinel]) {
                    c.err(
                        fp.key("kind"),
                        "`kind: failover` fails over a deployment redis-test started: it needs `target.local: cluster` or `target.local: sentinel`",
                    );
                }
                if *kind == MaintenanceKind::Migrate && !local(&[LocalTopology::Cluster]) {
                    c.err(fp.key("kind"), "`kind: migrate` moves slots of a cluster redis-test started: it needs `target.local: cluster`");
                }
                if shard.is_some() && target.as_ref().is_some_and(|t| t.mode != Mode::Cluster) {
                    c.err(fp.key("shard"), "`shard` names a cluster shard: a sentinel deployment has one master");
                }
                if shard.is_some_and(|s| s >= 3) {
                    c.err(fp.key("shard"), "the local cluster has shards 0..2");
                }
                if *kind == MaintenanceKind::Failover && slots.is_some() {
                    c.err(fp.key("slots"), "`slots` is for `kind: migrate`");
                }
            }
            FaultAction::Maintenance { kind: MaintenanceKind::Move, slots: Some(_), .. }
            | FaultAction::Maintenance { kind: MaintenanceKind::Move, shard: Some(_), .. } => {
                c.err(fp.key("kind"), "`shard` and `slots` are for cluster maintenance (`kind: failover`, `kind: migrate`)");
            }
            FaultAction::Notify { .. }
                if target.as_ref().is_some_and(|t| t.mode == Mode::Sentinel || !(t.proxy || matches!(t.endpoint, Endpoint::Local(_)))) =>
            {
                c.err(fp.key("action"), "`notify` sends through the fault proxy in front of a standalone or cluster target: set `target.proxy: true`");
            }
            _ => {}
        }
        // A pause, sleep or downtime must end with the run, or it would outlive the tool.
        let lasts = match &action {
            FaultAction::ClientPause { duration, .. }
            | FaultAction::DebugSleep { duration }
            | FaultAction::Freeze { duration, .. }
            | FaultAction::Network { duration, .. } => Some(("duration", *duration)),
            FaultAction::Restart { down_for, .. } => Some(("down_for", *down_for)),
            FaultAction::Maintenance { notice, kind: MaintenanceKind::Move, .. } => Some(("notice", *notice)),
            _ => None,
        };
        if let Some((key, d)) = lasts {
            let ends = start + at.get() + d;
            if at.get() < window && ends > total {
                c.err(
                    fp.key(key),
                    format!(
                        "would last until {} but the run ends at {}: a fault must end with the run",
                        crate::units::format_duration(ends),
                        crate::units::format_duration(total)
                    ),
                );
            }
        }
        let label = name.clone().unwrap_or_else(|| default_fault_name(&action, start + at.get()));
        placed.push((i, start + at.get()));
        out.push(Fault { name: label, at: start + at.get(), action, required: f.required() });
    }
    refuse_overlaps(c, &out, &placed);
    // A moved endpoint leaves the first proxy behind: the clients that handed off are on the new
    // one, which a second move's MOVING would not go through.
    let moves: Vec<usize> = placed
        .iter()
        .zip(&out)
        .filter(|(_, f)| matches!(f.action, FaultAction::Maintenance { kind: MaintenanceKind::Move, .. }))
        .map(|((i, _), _)| *i)
        .collect();
    if let [first, second, ..] = moves[..] {
        c.err(p("faults").index(second).key("kind"), format!("one `kind: move` per run: faults.{first} already moves the endpoint"));
    }
    out.sort_by_key(|f| f.at);
    out
}

/// Faults run at their offsets, concurrently when they overlap; two that cannot physically overlap
/// are refused here, each error naming the other fault's line: two restarts or freezes of one node
/// whose declared windows overlap, and two rolling upgrades (an upgrade's length is not known in
/// advance, so any two could). `placed` holds each fault's index in the file and its offset.
fn refuse_overlaps(c: &mut Checker<'_>, faults: &[Fault], placed: &[(usize, Duration)]) {
    let line_of = |c: &Checker<'_>, i: usize| c.root.locate(&p("faults").index(i)).line;
    // Per node: its restarts and freezes by start, each checked against the one before that holds
    // longest (a sweep: one error per fault at most, however many the file holds).
    let mut on_node: std::collections::BTreeMap<u32, Vec<(Duration, Duration, usize)>> = std::collections::BTreeMap::new();
    let mut upgrades = Vec::new();
    for (k, f) in faults.iter().enumerate() {
        let (i, at) = placed[k];
        match f.action {
            FaultAction::Restart { node, down_for, .. } => on_node.entry(node).or_default().push((at, at + down_for, k)),
            FaultAction::Freeze { node, duration } => on_node.entry(node).or_default().push((at, at + duration, k)),
            FaultAction::RollingUpgrade { .. } => upgrades.push((i, k)),
            _ => {}
        }
    }
    for (node, mut held) in on_node {
        held.sort_by_key(|h| (h.0, h.1));
        let mut longest: Option<(Duration, usize)> = None;
        for (from, to, k) in held {
            if let Some((until, other)) = longest.filter(|(until, _)| from < *until) {
                let (ia, ib) = (placed[other].0, placed[k].0);
                let why = format!(
                    "both act on node {node} at once ({} and {}, until {})",
                    crate::units::format_duration(placed[other].1),
                    crate::units::format_duration(from),
                    crate::units::format_duration(until)
                );
                let (la, lb) = (line_of(c, ia), line_of(c, ib));
                c.err(p("faults").index(ib), format!("fault `{}` overlaps fault `{}` (line {la}): {why}", faults[k].name, faults[other].name));
                c.err(p("faults").index(ia), format!("fault `{}` overlaps fault `{}` (line {lb}): {why}", faults[other].name, faults[k].name));
            }
            if longest.is_none_or(|(until, _)| to > until) {
                longest = Some((to, k));
            }
        }
    }
    // An upgrade's length is not known in advance: any two could overlap. Each later one names the first.
    if let Some(((first_i, first_k), rest)) = upgrades.split_first() {
        let why = "two rolling upgrades cannot overlap, and an upgrade's length is not known in advance";
        for (i, k) in rest {
            let (la, lb) = (line_of(c, *first_i), line_of(c, *i));
            c.err(p("faults").index(*i), format!("fault `{}` overlaps fault `{}` (line {la}): {why}", faults[*k].name, faults[*first_k].name));
            if rest.len() == 1 {
                c.err(p("faults").index(*first_i), format!("fault `{}` overlaps fault `{}` (line {lb}): {why}", faults[*first_k].name, faults[*k].name));
            }
        }
    }
}

/// The kind of a fault as written in files.
pub fn fault_kind(a: &FaultAction) -> &'static str {
    match a {
        FaultAction::ClientKill { .. } => "client_kill",
        FaultAction::ClientPause { .. } => "client_pause",
        FaultAction::DebugSleep { .. } => "debug_sleep",
        FaultAction::Failover { .. } => "failover",
        FaultAction::Restart { .. } => "restart",
        FaultAction::Freeze { .. } => "freeze",
        FaultAction::Network { fault, .. } => fault.name(),
        FaultAction::RollingUpgrade { .. } => "rolling_upgrade",
        FaultAction::Reset { .. } => "reset",
        FaultAction::Shell { .. } => "shell",
        FaultAction::Maintenance { .. } => "maintenance",
        FaultAction::Notify { .. } => "notify",
    }
}

fn fault_parts(f: &RawFault) -> (&Option<String>, crate::units::HumanDuration, &Option<String>, FaultAction) {
    match f {
        RawFault::ClientKill(s) => (&s.name, s.at, &s.phase, FaultAction::ClientKill { clients: s.clients }),
        RawFault::ClientPause(s) => (&s.name, s.at, &s.phase, FaultAction::ClientPause { duration: s.duration.get(), mode: s.mode }),
        RawFault::DebugSleep(s) => (&s.name, s.at, &s.phase, FaultAction::DebugSleep { duration: s.duration.get() }),
        RawFault::Failover(s) => (&s.name, s.at, &s.phase, FaultAction::Failover { shard: s.shard }),
        RawFault::Restart(s) => (&s.name, s.at, &s.phase, FaultAction::Restart { node: s.node, down_for: s.down_for.get(), new_port: s.new_port }),
        RawFault::RollingUpgrade(s) => (&s.name, s.at, &s.phase, FaultAction::RollingUpgrade { binary: s.binary.as_ref().map(std::path::PathBuf::from) }),
        RawFault::Latency(s) => (
            &s.name,
            s.at,
            &s.phase,
            FaultAction::Network { fault: NetworkFault::Latency { delay: s.delay.get(), jitter: s.jitter.get() }, node: s.node, duration: s.duration.get() },
        ),
        RawFault::Bandwidth(s) => (
            &s.name,
            s.at,
            &s.phase,
            FaultAction::Network { fault: NetworkFault::Bandwidth { bytes_per_second: s.bytes_per_second.0 }, node: s.node, duration: s.duration.get() },
        ),
        RawFault::Blackhole(s) => (&s.name, s.at, &s.phase, FaultAction::Network { fault: NetworkFault::Blackhole, node: s.node, duration: s.duration.get() }),
        RawFault::Partition(s) => (&s.name, s.at, &s.phase, FaultAction::Network { fault: NetworkFault::Partition, node: s.node, duration: s.duration.get() }),
        RawFault::Reset(s) => (&s.name, s.at, &s.phase, FaultAction::Reset { node: s.node }),
        RawFault::Freeze(s) => (&s.name, s.at, &s.phase, FaultAction::Freeze { node: s.node, duration: s.duration.get() }),
        RawFault::Shell(s) => (&s.name, s.at, &s.phase, FaultAction::Shell { command: s.command.clone(), timeout: s.timeout.get() }),
        RawFault::Maintenance(s) => {
            (&s.name, s.at, &s.phase, FaultAction::Maintenance { kind: s.kind, notice: s.notice.get(), announce: s.announce, shard: s.shard, slots: s.slots })
        }
        RawFault::Notify(s) => (&s.name, s.at, &s.phase, FaultAction::Notify { messages: s.messages.clone(), notice: s.notice.get() }),
    }
}

// ---------------------------------------------------------------------------------------------

/// Parses `<metric> <op> <value>`, e.g. `p99 < 5ms` or `error_rate <= 0.1%`.
pub fn parse_threshold_expr(expr: &str) -> Result<(Metric, Cmp, f64), String> {
    let (op_at, op_text, cmp) = Cmp::ALL
        .iter()
        .filter_map(|(text, cmp)| expr.find(text).map(|i| (i, *text, *cmp)))
        .min_by_key(|(i, text, _)| (*i, std::cmp::Reverse(text.len())))
        .ok_or_else(|| format!("`{expr}` has no comparison; write e.g. `p99 < 5ms`"))?;
    let name = expr[..op_at].trim();
    // `5 ms` reads as `5ms`: spaces carry no meaning inside a threshold value.
    let value: String = expr[op_at + op_text.len()..].chars().filter(|c| !c.is_whitespace()).collect();
    let value = value.as_str();
    let metric = Metric::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
        let hint = suggest(name, names.iter().copied()).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
        format!("unknown metric `{name}`; {hint}known metrics: {}", names.join(", "))
    })?;
    if value.is_empty() {
        return Err(format!("`{expr}` has no value after `{op_text}`"));
    }
    let limit = match metric.unit() {
        MetricUnit::Duration => {
            if value == "0" {
                0.0
            } else {
                parse_duration(value).map_err(|e| format!("{} is a duration: {e}", metric.name()))?.as_secs_f64() * 1e6
            }
        }
        MetricUnit::Ratio => match value.strip_suffix('%') {
            Some(pct) => pct.trim().parse::<f64>().map(|x| x / 100.0).map_err(|_| format!("`{value}` is not a percentage"))?,
            None => value.parse::<f64>().map_err(|_| format!("`{value}` is not a ratio; write e.g. `0.1%` or `0.001`"))?,
        },
        MetricUnit::Number => value.parse::<f64>().map_err(|_| format!("`{value}` is not a number"))?,
    };
    if !limit.is_finite() || limit < 0.0 {
        return Err(format!("`{value}` must be a finite value of zero or more"));
    }
    if metric.unit() == MetricUnit::Ratio && limit > 1.0 {
        return Err(format!("`{value}` is more than 100%"));
    }
    Ok((metric, cmp, limit))
}

/// How many data nodes the target has, when the file says: one server, or a local deployment
/// (a cluster of three primaries with a replica each, a primary and a replica under sentinels).
fn data_nodes(t: &Target) -> Option<u32> {
    match (&t.endpoint, t.mode) {
        (_, Mode::Standalone) => Some(1),
        (Endpoint::Local(_), Mode::Cluster) => Some(6),
        (Endpoint::Local(_), Mode::Sentinel) => Some(2),
        _ => None,
    }
}

/// Why a rule is decided before the run, whatever it measures: it always holds (it checks
/// nothing, as `lost_writes >= 0` — likely meant `lost_writes == 0` — would pass every run) or it
/// never holds (it fails every run). Every figure is 0 or more, a ratio at most 100%, and a count
/// a whole number.
fn decided(metric: Metric, cmp: Cmp, limit: f64) -> Option<String> {
    let name = metric.name();
    let count = matches!(metric, Metric::Ops | Metric::Errors | Metric::LostWrites | Metric::DuplicateWrites | Metric::Lag);
    let always = || {
        format!(
            "always holds (every `{name}` is {}): it checks nothing",
            if metric.unit() == MetricUnit::Ratio && limit >= 1.0 { "at most 100%" } else { "0 or more" }
        )
    };
    let never = |why: &str| format!("never holds ({why}): every run would fail it");
    match cmp {
        Cmp::Ge if limit == 0.0 => Some(always()),
        Cmp::Le if metric.unit() == MetricUnit::Ratio && limit >= 1.0 => Some(always()),
        Cmp::Lt if limit == 0.0 => Some(never(&format!("no `{name}` is below 0"))),
        Cmp::Gt if metric.unit() == MetricUnit::Ratio && limit >= 1.0 => Some(never("no ratio is above 100%")),
        Cmp::Eq if count && limit.fract() != 0.0 => Some(never(&format!("`{name}` is a whole number"))),
        Cmp::Ne if count && limit.fract() != 0.0 => Some(format!("always holds (`{name}` is a whole number): it checks nothing")),
        _ => None,
    }
}

fn thresholds(c: &mut Checker<'_>, raw: &RawScenario, phases: &[Phase], workloads: &[Workload], faults: &[Fault]) -> Vec<Threshold> {
    let mut out = Vec::new();
    for (i, t) in raw.thresholds.iter().enumerate() {
        let tp = p("thresholds").index(i);
        let (expr, phase, workload, operation, fault, expr_path) = match t {
            RawThreshold::Expr(e) => (e, None, None, None, None, tp.clone()),
            RawThreshold::Scoped(s) => (&s.expr, s.phase.clone(), s.workload.clone(), s.operation.clone(), s.fault.clone(), tp.key("expr")),
        };
        let parsed = parse_threshold_expr(expr);
        match &parsed {
            Err(e) => c.err(expr_path, e.clone()),
            Ok((metric, cmp, limit)) => {
                if let Some(why) = decided(*metric, *cmp, *limit) {
                    c.err(expr_path, format!("`{expr}` {why}"));
                }
            }
        }
        if let Some(ph) = &phase
            && !phases.iter().any(|p| &p.name == ph)
        {
            let hint = suggest(ph, phases.iter().map(|p| p.name.as_str())).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            c.err(tp.key("phase"), format!("no phase named `{ph}`{hint}"));
        }
        let in_scope: Vec<&Workload> = match &workload {
            Some(w) => {
                let found: Vec<&Workload> = workloads.iter().filter(|x| &x.name == w).collect();
                if found.is_empty() {
                    let hint = suggest(w, workloads.iter().map(|w| w.name.as_str())).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                    c.err(tp.key("workload"), format!("no workload named `{w}`{hint}"));
                }
                found
            }
            None => workloads.iter().collect(),
        };
        if let Some(op) = &operation {
            let ops: Vec<&str> = in_scope.iter().flat_map(|w| w.kind.operation_names()).collect();
            if !in_scope.is_empty() && !ops.iter().any(|o| o.eq_ignore_ascii_case(op)) {
                let mut known = ops.clone();
                known.sort_unstable();
                known.dedup();
                c.err(tp.key("operation"), format!("no workload in scope performs `{op}`; operations: {}", known.join(", ")));
            }
        }
        // A rule that can never measure anything can never pass: say so now, not after the run.
        let scoped_phase = phase.as_ref().and_then(|name| phases.iter().position(|p| &p.name == name));
        let runs_in = |w: &Workload, pi: usize| phases[pi].mix.iter().any(|(n, x)| *n == w.name && *x > 0.0);
        if let Some(w) = in_scope.first().filter(|_| workload.is_some()) {
            match scoped_phase {
                Some(pi) if !runs_in(w, pi) => c.err(
                    tp.key("workload"),
                    format!("workload `{}` does not run in phase `{}` (its mix leaves it out), so this rule would measure nothing", w.name, phases[pi].name),
                ),
                None if !(0..phases.len()).any(|pi| runs_in(w, pi)) => {
                    c.err(tp.key("workload"), format!("workload `{}` runs in no phase, so this rule would measure nothing", w.name))
                }
                _ => {}
            }
        }
        if let Ok((metric, cmp, limit)) = parsed {
            let verifies = |w: &&Workload| {
                matches!(
                    &w.kind,
                    RawWorkload::Basic(BasicSpec { verify: true, .. }) | RawWorkload::Hash(HashSpec { verify: true, .. }) | RawWorkload::Stream(_)
                )
            };
            if matches!(metric, Metric::LostWrites | Metric::DuplicateWrites) && !in_scope.iter().any(verifies) {
                c.err(
                    expr_path_or(&tp, t),
                    format!("`{}` needs a `basic` or `hash` workload with `verify: true`, or a `stream` workload, in scope", metric.name()),
                );
            }
            if metric == Metric::Lag {
                if !in_scope.iter().any(|w| matches!(w.kind, RawWorkload::Stream(_))) {
                    c.err(expr_path_or(&tp, t), "`lag` needs a `stream` workload in scope");
                }
                if scoped_phase.is_some() {
                    c.err(tp.key("phase"), "`lag` is read once, at the end of the run: it takes no `phase`");
                }
            }
            if metric == Metric::RecoveryTime {
                let window = scoped_phase.map(|pi| {
                    let start: Duration = phases[..pi].iter().map(|p| p.duration).sum();
                    (start, start + phases[pi].duration)
                });
                let any = faults.iter().any(|f| window.is_none_or(|(a, b)| f.at >= a && f.at < b));
                if !any {
                    let where_ = scoped_phase.map_or_else(|| "this scenario".to_owned(), |pi| format!("phase `{}`", phases[pi].name));
                    c.err(
                        expr_path_or(&tp, t),
                        format!("`recovery_time` is measured after a fault, and no fault runs in {where_}; add a fault or drop the rule"),
                    );
                }
            }
            if let Some(name) = &fault {
                fault_scope(c, &tp, t, name, metric, faults, (phase.is_some(), workload.is_some(), operation.is_some()));
            }
            if metric == Metric::HandoffTime {
                if scoped_phase.is_some() || workload.is_some() || operation.is_some() {
                    c.err(expr_path_or(&tp, t), "`handoff_time` is the client's, over the whole run: it takes no `phase`, `workload` or `operation`");
                }
                if !faults.iter().any(|f| matches!(f.action, FaultAction::Maintenance { announce: true, .. } | FaultAction::Notify { .. })) {
                    c.err(
                        expr_path_or(&tp, t),
                        "`handoff_time` is measured after a MOVING: add an announced `maintenance` or a `notify` fault, or drop the rule",
                    );
                }
            }
            if metric.unit() == MetricUnit::Duration
                && !matches!(metric, Metric::Outage | Metric::RecoveryTime | Metric::HandoffTime)
                && let Some(op) = &operation
            {
                let timed = in_scope.iter().flat_map(|w| w.kind.operations()).any(|o| o.name.eq_ignore_ascii_case(op) && o.role != OpRole::Command);
                let known = in_scope.iter().flat_map(|w| w.kind.operations()).any(|o| o.name.eq_ignore_ascii_case(op));
                if known && !timed {
                    c.err(
                        tp.key("operation"),
                        format!("`{op}` is a command inside batch round trips: it has no latency of its own; judge the batch (`PIPELINE` or `EXEC`) instead"),
                    );
                }
            }
            out.push(Threshold { expr: expr.clone(), metric, cmp, limit, phase, workload, operation: operation.map(|o| o.to_uppercase()), fault });
        }
    }
    out
}

/// A rule scoped to a fault's window: the fault must exist, and the metric must be one its verdict
/// measures over that window (errors, outage, recovery, handoffs; latency rows are per phase).
fn fault_scope(c: &mut Checker<'_>, tp: &DocPath, t: &RawThreshold, name: &str, metric: Metric, faults: &[Fault], scoped: (bool, bool, bool)) {
    let (phase, workload, operation) = scoped;
    let Some(f) = faults.iter().find(|f| f.name == name) else {
        let hint = suggest(name, faults.iter().map(|f| f.name.as_str())).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
        c.err(tp.key("fault"), format!("no fault named `{name}`{hint}"));
        return;
    };
    if !matches!(metric, Metric::Errors | Metric::Outage | Metric::RecoveryTime | Metric::HandoffTime) {
        c.err(
            expr_path_or(tp, t),
            format!("`{}` is not measured over a fault's window: a `fault` rule judges errors, outage, recovery_time or handoff_time", metric.name()),
        );
    }
    if phase || operation {
        c.err(tp.key("fault"), "a fault's window is its own scope: a `fault` rule takes no `phase` or `operation`");
    }
    if workload && metric != Metric::Outage {
        c.err(tp.key("workload"), "a fault's window counts errors over every workload: only `outage` takes a `workload` there");
    }
    let moves = match &f.action {
        FaultAction::Maintenance { kind: crate::scenario::raw::MaintenanceKind::Move, announce: true, .. } => true,
        FaultAction::Notify { messages, .. } => messages.contains(&crate::scenario::raw::MaintenanceMessage::Moving),
        _ => false,
    };
    if metric == Metric::HandoffTime && !moves {
        c.err(tp.key("fault"), format!("fault `{name}` sends no MOVING, so `handoff_time` in its window would measure nothing"));
    }
}

fn expr_path_or(tp: &DocPath, t: &RawThreshold) -> DocPath {
    match t {
        RawThreshold::Expr(_) => tp.clone(),
        RawThreshold::Scoped(_) => tp.key("expr"),
    }
}

// ---------------------------------------------------------------------------------------------

fn output(c: &mut Checker<'_>, o: &RawOutput) -> Output {
    for (key, v) in [("json", &o.json), ("html", &o.html), ("junit", &o.junit)] {
        if let Some(v) = v
            && let Err(e) = check_template(v)
        {
            c.err(p("output").key(key), e);
        }
    }
    Output { json: o.json.clone(), html: o.html.clone(), junit: o.junit.clone() }
}

/// A run id goes into client names (CLIENT SETNAME refuses spaces), metric labels and file names.
pub fn check_run_id(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 128 {
        return Err("a run id has 1 to 128 characters".into());
    }
    match s.chars().find(|c| !(c.is_ascii_alphanumeric() || "._:-".contains(*c))) {
        Some(c) => Err(format!("a run id holds letters, digits and `._:-` only, not {c:?}")),
        None => Ok(()),
    }
}

/// Checks that a path template uses only `{name}` and `{run_id}`.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or_else(|| format!("unclosed `{{` in `{t}`"))? + open;
        let name = &rest[open + 1..close];
        if name != "name" && name != "run_id" {
            return Err(format!("unknown placeholder `{{{name}}}`; use `{{name}}` or `{{run_id}}`"));
        }
        rest = &rest[close + 1..];
    }
    if t.trim().is_empty() {
        return Err("the path is empty".into());
    }
    Ok(())
}

/// Parses a listen address: `host:port`, or a bare port meaning loopback.
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.trim().parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.trim().parse().map_err(|_| format!("`{s}` is not `host:port` or a port number (use an IP address, e.g. `127.0.0.1:9464`)"))
}

fn metrics(c: &mut Checker<'_>, m: &RawMetrics, dir: &Path) -> Metrics {
    let mp = p("metrics");
    let prometheus = m.prometheus.as_ref().and_then(|pr| match parse_listen(&pr.listen) {
        Ok(a) => Some(a),
        Err(e) => {
            c.err(mp.key("prometheus").key("listen"), e);
            None
        }
    });
    let otlp = m.otlp.as_ref().map(|o| {
        if let Some(ep) = &o.endpoint
            && !(ep.starts_with("http://") || ep.starts_with("https://"))
        {
            c.err(mp.key("otlp").key("endpoint"), "an OTLP endpoint is an `http://` or `https://` URL");
        }
        let interval = c.positive(mp.key("otlp").key("interval"), o.interval.get());
        Otlp {
            endpoint: o.endpoint.clone(),
            protocol: o.protocol,
            interval,
            headers: o.headers.iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect(),
            traces: o.traces,
            compression: o.compression,
            certificate: o.certificate.as_ref().map(|f| {
                let path = dir.join(f);
                if !path.is_file() {
                    c.err(mp.key("otlp").key("certificate"), format!("file {} does not exist", path.display()));
                }
                path
            }),
        }
    });
    if let Some(url) = &m.pushgateway
        && let Err(e) = crate::http::Endpoint::parse(url, None)
    {
        c.err(mp.key("pushgateway"), format!("the Pushgateway is an http:// or https:// URL: {e}"));
    }
    if let Some(id) = &m.labels.run_id
        && let Err(e) = check_run_id(id)
    {
        c.err(mp.key("labels").key("run_id"), e);
    }
    Metrics {
        prometheus,
        otlp,
        pushgateway: m.pushgateway.clone(),
        app_name: m.labels.app_name.clone(),
        instance_id: m.labels.instance_id.clone(),
        run_id: m.labels.run_id.clone(),
        version: m.labels.version.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_decided_before_the_run_are_named() {
        use super::{decided, parse_threshold_expr};
        let verdict = |e: &str| {
            let (m, c, l) = parse_threshold_expr(e).unwrap();
            decided(m, c, l)
        };
        for e in ["lost_writes >= 0", "p99 >= 0ms", "errors >= 0", "ops >= 0", "error_rate <= 100%", "error_rate <= 1", "lag >= 0", "errors != 0.5"] {
            assert!(verdict(e).is_some_and(|w| w.starts_with("always holds") && w.ends_with("it checks nothing")), "{e}: {:?}", verdict(e));
        }
        for e in ["p99 < 0ms", "ops < 0", "error_rate > 100%", "errors == 0.5", "outage < 0s"] {
            assert!(verdict(e).is_some_and(|w| w.starts_with("never holds") && w.ends_with("every run would fail it")), "{e}: {:?}", verdict(e));
        }
        for e in [
            "lost_writes == 0",
            "lost_writes <= 0",
            "ops > 0",
            "errors < 1",
            "error_rate < 100%",
            "error_rate >= 100%",
            "p99 < 5ms",
            "ops_per_sec == 0.5",
            "p99 != 5ms",
            "errors == 3",
        ] {
            assert_eq!(verdict(e), None, "{e} checks something");
        }
    }

    use super::*;

    #[test]
    fn urls_parse_with_credentials_and_db() {
        let u = parse_redis_url("rediss://app:p%40ss@cache.example:6380/2").unwrap();
        assert!(u.tls);
        assert_eq!(u.username.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.addr, Some(HostPort { host: "cache.example".into(), port: 6380 }));
        assert_eq!(u.db, Some(2));
        assert_eq!(parse_redis_url("redis://[::1]:7000").unwrap().addr.unwrap().to_string(), "[::1]:7000");
        assert!(parse_redis_url("http://x").is_err());
        assert!(parse_redis_url("redis://h:99999").is_err());
    }

    #[test]
    fn threshold_expressions() {
        assert_eq!(parse_threshold_expr("p99 < 5ms").unwrap(), (Metric::P99, Cmp::Lt, 5000.0));
        assert_eq!(parse_threshold_expr("error_rate <= 0.1%").unwrap(), (Metric::ErrorRate, Cmp::Le, 0.001));
        assert_eq!(parse_threshold_expr("ops_per_sec>40000").unwrap(), (Metric::OpsPerSec, Cmp::Gt, 40000.0));
        assert_eq!(parse_threshold_expr("lost_writes == 0").unwrap(), (Metric::LostWrites, Cmp::Eq, 0.0));
        assert!(parse_threshold_expr("eror_rate < 1%").unwrap_err().contains("did you mean `error_rate`"));
        assert!(parse_threshold_expr("p99 < 5").unwrap_err().contains("no unit"));
        assert!(parse_threshold_expr("p99 5ms").unwrap_err().contains("no comparison"));
    }

    #[test]
    fn templates_and_listen_addresses() {
        assert!(check_template("reports/{name}-{run_id}.json").is_ok());
        assert!(check_template("reports/{date}.json").unwrap_err().contains("{date}"));
        assert_eq!(parse_listen("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert!(parse_listen("localhost:x").is_err());
    }
}
