//! Maintenance notifications ("smart client handoffs"): the push messages a server (Redis Software,
//! Redis Cloud, or redis-test's own fault proxy) sends before and after it changes under the
//! clients, and what a client that enabled them counts and does about them.
//!
//! - [`Notice`]: one message, parsed from a RESP3 push in every variant the clients' test
//!   generators send (simple or bulk strings, integers or numeric strings, extra trailing elements,
//!   a MOVING without an endpoint, a MIGRATING without a time) and encoded for the proxy to send;
//! - [`ClientMaintenance`]: what the native engine does with them — relaxed command timeouts while
//!   a window is open, and the MOVING handoff (new connections to the announced endpoint while
//!   in-flight replies finish on the old ones) — and what it counts for the report.
//!
//! The protocol as the clients implement it: `../shared/REFERENCES.md` section 3.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::resp::Value;
use crate::scenario::model::HostPort;

/// The kinds of message, by their name on the wire (the scenario names them the same way).
pub use crate::scenario::raw::MaintenanceMessage as Kind;

impl Kind {
    /// Every kind, in wire-name order of a maintenance's life.
    pub const ALL: [Kind; 7] = [Kind::Migrating, Kind::Migrated, Kind::FailingOver, Kind::FailedOver, Kind::Moving, Kind::SMigrating, Kind::SMigrated];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Moving => "MOVING",
            Kind::Migrating => "MIGRATING",
            Kind::Migrated => "MIGRATED",
            Kind::FailingOver => "FAILING_OVER",
            Kind::FailedOver => "FAILED_OVER",
            Kind::SMigrating => "SMIGRATING",
            Kind::SMigrated => "SMIGRATED",
        }
    }

    /// The kind named `name` (case-insensitive, as the generators are not consistent).
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether it opens a relaxed window (a change is under way).
    pub fn opens_window(self) -> bool {
        matches!(self, Kind::Migrating | Kind::FailingOver | Kind::SMigrating | Kind::Moving)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One maintenance notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Which message.
    pub kind: Kind,
    /// Its sequence number (0 when the sender gave none that parses).
    pub seq: i64,
    /// The announced time (MOVING: until the old endpoint closes; MIGRATING, FAILING_OVER: how
    /// long the change may take), when given.
    pub time: Option<Duration>,
    /// MOVING: the new endpoint; `None` means "the same address, after half the time".
    pub endpoint: Option<HostPort>,
    /// SMIGRATING: the slots being migrated; SMIGRATED: the slots that moved, with their new
    /// owner's address.
    pub slots: Vec<(u16, u16)>,
    /// SMIGRATED: where the slots now live.
    pub destinations: Vec<HostPort>,
}

/// An integer element, sent as an integer or as a numeric string.
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Double(d) if d.is_finite() => Some(*d as i64),
        _ => std::str::from_utf8(v.as_bytes()?).ok()?.trim().parse().ok(),
    }
}

/// A time element in seconds (an integer, a double or a numeric string).
fn seconds_of(v: &Value) -> Option<Duration> {
    let s = match v {
        Value::Int(n) => *n as f64,
        Value::Double(d) => *d,
        _ => std::str::from_utf8(v.as_bytes()?).ok()?.trim().parse().ok()?,
    };
    (0.0..1e9).contains(&s).then(|| Duration::from_secs_f64(s))
}

/// `host:port` (IPv6 in brackets or not), or `None` for a null or the text `null`.
fn endpoint_of(v: &Value) -> Option<HostPort> {
    let text = std::str::from_utf8(v.as_bytes()?).ok()?.trim();
    if text.eq_ignore_ascii_case("null") || text.is_empty() {
        return None;
    }
    let (host, port) = text.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(HostPort { host: host.to_owned(), port: port.parse().ok()? })
}

/// Slot ranges from text like `1000,2000-2999` (elements may also be integers).
fn slots_of(v: &Value, out: &mut Vec<(u16, u16)>) {
    match v {
        Value::Int(n) => {
            if let Ok(s) = u16::try_from(*n) {
                out.push((s, s));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| slots_of(i, out)),
        _ => {
            let Some(text) = v.as_bytes().and_then(|b| std::str::from_utf8(b).ok()) else { return };
            for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u16>(), b.trim().parse::<u16>())
                    && a <= b
                    && b < 16384
                {
                    out.push((a, b));
                }
            }
        }
    }
}

impl Notice {
    /// The notice a push message carries, or `None` when it is another push (a pub/sub message,
    /// an invalidation) or not a push at all.
    pub fn parse(v: &Value) -> Option<Notice> {
        let Value::Push(items) = v else { return None };
        let kind = Kind::from_name(items.first()?.as_bytes()?)?;
        let seq = items.get(1).and_then(int_of).unwrap_or(0);
        let mut n = Notice { kind, seq, time: None, endpoint: None, slots: Vec::new(), destinations: Vec::new() };
        let rest = items.get(2..).unwrap_or_default();
        match kind {
            Kind::Moving => {
                // `MOVING seq time endpoint`; go-redis also takes `MOVING seq time`.
                n.time = rest.first().and_then(seconds_of);
                n.endpoint = rest.get(1).and_then(endpoint_of);
            }
            // Extra elements (a slot, a `shards` marker) are tolerated; a third element that is
            // not a number is not a time.
            Kind::Migrating | Kind::FailingOver => n.time = rest.first().and_then(seconds_of),
            Kind::Migrated | Kind::FailedOver => {}
            Kind::SMigrating => rest.iter().for_each(|v| slots_of(v, &mut n.slots)),
            Kind::SMigrated => {
                // `[[src, dst, slots], …]`, or one triplet given flat.
                let triplets: Vec<&[Value]> = match rest {
                    [Value::Array(list)] if list.iter().all(|t| matches!(t, Value::Array(_))) => {
                        list.iter().filter_map(|t| if let Value::Array(t) = t { Some(t.as_slice()) } else { None }).collect()
                    }
                    flat => vec![flat],
                };
                for t in triplets {
                    if let Some(dst) = t.get(1).and_then(endpoint_of) {
                        n.destinations.push(dst);
                    }
                    if let Some(s) = t.get(2) {
                        slots_of(s, &mut n.slots);
                    }
                }
            }
        }
        Some(n)
    }

    /// The notice as a RESP3 push frame, as redis-test's proxy sends it: the name as a bulk
    /// string, the sequence and time as integers, a null endpoint as RESP3 null.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let bulk = |out: &mut Vec<u8>, s: &[u8]| {
            out.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
            out.extend_from_slice(s);
            out.extend_from_slice(b"\r\n");
        };
        let slots = |s: &[(u16, u16)]| s.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect::<Vec<_>>().join(",");
        let time = self.time.unwrap_or_default().as_secs();
        match self.kind {
            Kind::Moving => {
                out.extend_from_slice(b">4\r\n");
                bulk(out, b"MOVING");
                out.extend_from_slice(format!(":{}\r\n:{time}\r\n", self.seq).as_bytes());
                match &self.endpoint {
                    Some(e) => bulk(out, e.to_string().as_bytes()),
                    None => out.extend_from_slice(b"_\r\n"),
                }
            }
            Kind::Migrating | Kind::FailingOver => {
                out.extend_from_slice(b">3\r\n");
                bulk(out, self.kind.name().as_bytes());
                out.extend_from_slice(format!(":{}\r\n:{time}\r\n", self.seq).as_bytes());
            }
            Kind::Migrated | Kind::FailedOver => {
                out.extend_from_slice(b">2\r\n");
                bulk(out, self.kind.name().as_bytes());
                out.extend_from_slice(format!(":{}\r\n", self.seq).as_bytes());
            }
            Kind::SMigrating => {
                out.extend_from_slice(b">3\r\n");
                bulk(out, b"SMIGRATING");
                out.extend_from_slice(format!(":{}\r\n", self.seq).as_bytes());
                bulk(out, slots(&self.slots).as_bytes());
            }
            Kind::SMigrated => {
                out.extend_from_slice(b">3\r\n");
                bulk(out, b"SMIGRATED");
                out.extend_from_slice(format!(":{}\r\n*{}\r\n", self.seq, self.destinations.len()).as_bytes());
                for d in &self.destinations {
                    out.extend_from_slice(b"*3\r\n");
                    bulk(out, b"");
                    bulk(out, d.to_string().as_bytes());
                    bulk(out, slots(&self.slots).as_bytes());
                }
            }
        }
    }
}

pub use crate::scenario::raw::{MaintenanceMode as Mode, MovingEndpointType as EndpointType};

/// The value sent in the handshake for `kind` and a target at `host`.
pub fn endpoint_type_wire(kind: EndpointType, host: &str) -> &'static str {
    match kind {
        EndpointType::Auto => match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) if ip.is_private() || ip.is_loopback() || ip.is_link_local() => "internal-ip",
            Ok(std::net::IpAddr::V6(ip)) if ip.is_loopback() || ip.is_unique_local() => "internal-ip",
            Ok(_) => "external-ip",
            Err(_) => "external-fqdn",
        },
        EndpointType::InternalIp => "internal-ip",
        EndpointType::InternalFqdn => "internal-fqdn",
        EndpointType::ExternalIp => "external-ip",
        EndpointType::ExternalFqdn => "external-fqdn",
        EndpointType::None => "none",
    }
}

/// How long a window stays relaxed after its closing message (MIGRATED, FAILED_OVER): replies
/// already delayed by the change still arrive late.
pub const POST_EVENT_RELAXED: Duration = Duration::from_secs(1);

/// What the native engine does with notifications and what it counted: shared by every
/// connection of a run.
#[derive(Debug)]
pub struct ClientMaintenance {
    /// Whether it asks.
    pub mode: Mode,
    /// The command timeout while a window is open (the larger of it and the configured one).
    pub relaxed_timeout: Duration,
    /// What the handshake asks MOVING to carry.
    pub endpoint_type: EndpointType,
    /// The address connections follow (a MOVING changes it): set for standalone targets.
    follow: Option<Arc<crate::client::native::master::Master>>,
    /// Asks for the cluster slot map to be read again (SMIGRATED).
    refresh: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
    enabled: AtomicU64,
    unsupported: AtomicU64,
    unsupported_reply: Mutex<Option<String>>,
    received: Mutex<BTreeMap<Kind, u64>>,
    windows: AtomicU64,
    backstops: AtomicU64,
    relaxed_us: AtomicU64,
    /// Open connections by the generation they were opened for.
    live: Mutex<BTreeMap<u64, u64>>,
    last_moving_seq: AtomicI64,
    handoffs: Mutex<Vec<HandoffState>>,
    t0: Instant,
}

/// A MOVING being acted on: the connections of its generation and older close as their replies
/// finish.
#[derive(Debug, Clone)]
struct HandoffState {
    seq: i64,
    received: Instant,
    /// Connections of generations up to this one are the old ones.
    old_generation: u64,
    /// Old connections open when it arrived.
    connections: u64,
    endpoint: Option<HostPort>,
    done: Option<Instant>,
}

/// What the client did during the run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientReport {
    /// The client: `native` or `redis-rs`.
    pub client: String,
    /// `auto`, `on` or `off`.
    pub mode: String,
    /// Connections whose `CLIENT MAINT_NOTIFICATIONS ON` the server accepted.
    pub enabled_connections: u64,
    /// Connections whose server refused it (`auto`: the run goes on without).
    pub unsupported_connections: u64,
    /// What the server said when it refused ("not supported by the server").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported_reply: Option<String>,
    /// Messages received, by kind, over all connections.
    pub received: BTreeMap<String, u64>,
    /// Relaxed windows opened (one per connection per change).
    pub relaxed_windows: u64,
    /// Windows closed by the backstop because no closing message came.
    pub relaxed_backstops: u64,
    /// Time spent in relaxed windows, summed over connections, seconds.
    pub relaxed_s: f64,
    /// One per MOVING acted on.
    pub handoffs: Vec<Handoff>,
    /// What this client does with notifications, in a sentence.
    pub behaviour: String,
}

/// One MOVING acted on by the client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Handoff {
    /// The MOVING's sequence number.
    pub seq: i64,
    /// When it arrived, seconds since the run's start.
    pub at_s: f64,
    /// The announced endpoint, or `null` (the same address after half the time).
    pub endpoint: Option<String>,
    /// Old connections open when it arrived, each closed after its last reply and replaced.
    pub connections_moved: u64,
    /// From the MOVING to the last old connection closed, seconds; `None` if some stayed open.
    pub handoff_time_s: Option<f64>,
}

impl ClientMaintenance {
    /// The state for one run: `follow` is the address standalone connections follow.
    pub fn new(
        mode: Mode,
        relaxed_timeout: Duration,
        endpoint_type: EndpointType,
        follow: Option<Arc<crate::client::native::master::Master>>,
    ) -> ClientMaintenance {
        ClientMaintenance {
            mode,
            relaxed_timeout,
            endpoint_type,
            follow,
            refresh: std::sync::OnceLock::new(),
            enabled: AtomicU64::new(0),
            unsupported: AtomicU64::new(0),
            unsupported_reply: Mutex::new(None),
            received: Mutex::new(BTreeMap::new()),
            windows: AtomicU64::new(0),
            backstops: AtomicU64::new(0),
            relaxed_us: AtomicU64::new(0),
            live: Mutex::new(BTreeMap::new()),
            last_moving_seq: AtomicI64::new(i64::MIN),
            handoffs: Mutex::new(Vec::new()),
            t0: Instant::now(),
        }
    }

    /// SMIGRATED asks for the slot map to be read again through this.
    pub fn set_refresh(&self, refresh: Arc<tokio::sync::Notify>) {
        let _ = self.refresh.set(refresh);
    }

    /// The handshake's answer: accepted, or refused with `reply`.
    pub fn handshake(&self, accepted: bool, reply: Option<&str>) {
        if accepted {
            self.enabled.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unsupported.fetch_add(1, Ordering::Relaxed);
            let mut r = self.unsupported_reply.lock().expect("maintenance lock");
            if r.is_none() {
                *r = reply.map(|s| s.chars().take(200).collect());
            }
        }
    }

    /// A connection of `generation` opened.
    pub fn opened(&self, generation: u64) {
        *self.live.lock().expect("maintenance lock").entry(generation).or_default() += 1;
    }

    /// A connection of `generation` closed: a handoff waiting for it may be done.
    pub fn closed(&self, generation: u64) {
        let mut live = self.live.lock().expect("maintenance lock");
        if let Some(n) = live.get_mut(&generation) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&generation);
            }
        }
        let oldest = live.keys().next().copied();
        drop(live);
        let now = Instant::now();
        for h in self.handoffs.lock().expect("maintenance lock").iter_mut().filter(|h| h.done.is_none()) {
            if oldest.is_none_or(|g| g > h.old_generation) {
                h.done = Some(now);
            }
        }
    }

    /// A relaxed window closed after `open` (summed for the report).
    fn window_closed(&self, open: Duration, by_backstop: bool) {
        self.relaxed_us.fetch_add(open.as_micros() as u64, Ordering::Relaxed);
        if by_backstop {
            self.backstops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A notice arrived on a connection of `generation`: counted, and a MOVING acted on once per
    /// sequence number (every connection gets its own copy).
    pub fn received(&self, n: &Notice, generation: u64) {
        *self.received.lock().expect("maintenance lock").entry(n.kind).or_default() += 1;
        match n.kind {
            Kind::Moving => self.moving(n, generation),
            Kind::SMigrated => {
                if let Some(r) = self.refresh.get() {
                    r.notify_one();
                }
            }
            _ => {}
        }
    }

    fn moving(&self, n: &Notice, generation: u64) {
        let Some(follow) = &self.follow else { return };
        if self.last_moving_seq.swap(n.seq, Ordering::AcqRel) == n.seq || follow.generation() != generation {
            return;
        }
        let connections = self.live.lock().expect("maintenance lock").range(..=generation).map(|(_, c)| *c).sum();
        self.handoffs.lock().expect("maintenance lock").push(HandoffState {
            seq: n.seq,
            received: Instant::now(),
            old_generation: generation,
            connections,
            endpoint: n.endpoint.clone(),
            done: None,
        });
        tracing::info!(seq = n.seq, endpoint = ?n.endpoint.as_ref().map(ToString::to_string), "MOVING: handing the connections off");
        match &n.endpoint {
            // New connections go to the new endpoint; pooled ones are replaced as they come back.
            Some(e) => follow.renew(Some(e.clone())),
            // The same address, after half the announced time.
            None => {
                let follow = Arc::clone(follow);
                let wait = n.time.unwrap_or_default() / 2;
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    follow.renew(None);
                });
            }
        }
    }

    /// What the client did, for the report.
    pub fn report(&self, client: &str) -> ClientReport {
        let handoffs = self
            .handoffs
            .lock()
            .expect("maintenance lock")
            .iter()
            .map(|h| Handoff {
                seq: h.seq,
                at_s: h.received.saturating_duration_since(self.t0).as_secs_f64(),
                endpoint: h.endpoint.as_ref().map(ToString::to_string),
                connections_moved: h.connections,
                handoff_time_s: h.done.map(|d| d.saturating_duration_since(h.received).as_secs_f64()),
            })
            .collect();
        ClientReport {
            client: client.to_owned(),
            mode: format!("{:?}", self.mode).to_lowercase(),
            enabled_connections: self.enabled.load(Ordering::Relaxed),
            unsupported_connections: self.unsupported.load(Ordering::Relaxed),
            unsupported_reply: self.unsupported_reply.lock().expect("maintenance lock").clone(),
            received: self.received.lock().expect("maintenance lock").iter().map(|(k, v)| (k.name().to_owned(), *v)).collect(),
            relaxed_windows: self.windows.load(Ordering::Relaxed),
            relaxed_backstops: self.backstops.load(Ordering::Relaxed),
            relaxed_s: self.relaxed_us.load(Ordering::Relaxed) as f64 / 1e6,
            handoffs,
            behaviour: "native: relaxed command timeouts while a window is open; MOVING hands connections off to the announced endpoint (or the same address after half the time); SMIGRATED reads the slot map again".into(),
        }
    }
}

impl ClientReport {
    /// The figures exporters publish while the run goes on.
    pub fn live(&self) -> crate::live::MaintenanceLive {
        crate::live::MaintenanceLive {
            received: self.received.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            relaxed_windows: self.relaxed_windows,
            handoffs: self.handoffs.len() as u64,
            longest_handoff_s: self.handoffs.iter().filter_map(|h| h.handoff_time_s).reduce(f64::max),
        }
    }
}

/// One connection's relaxed window: opened by MIGRATING, FAILING_OVER, SMIGRATING or MOVING, closed
/// by the matching message plus [`POST_EVENT_RELAXED`], or by a backstop of twice the relaxed
/// timeout when no closing message comes.
#[derive(Debug, Default)]
pub struct Window {
    opened: Option<Instant>,
    until: Option<Instant>,
}

impl Window {
    /// Applies notice `kind` at `now`.
    pub fn apply(&mut self, kind: Kind, now: Instant, shared: &ClientMaintenance) {
        self.expire(now, shared);
        if kind.opens_window() {
            if self.opened.is_none() {
                self.opened = Some(now);
                shared.windows.fetch_add(1, Ordering::Relaxed);
            }
            self.until = Some(now + shared.relaxed_timeout * 2);
        } else if self.opened.is_some() {
            self.until = Some(now + POST_EVENT_RELAXED);
        }
    }

    /// Closes the window when its time ran out.
    fn expire(&mut self, now: Instant, shared: &ClientMaintenance) {
        if let (Some(opened), Some(until)) = (self.opened, self.until)
            && now >= until
        {
            // A window still at its backstop when it ran out was never closed by a message.
            let by_backstop = until.saturating_duration_since(opened) >= shared.relaxed_timeout * 2;
            shared.window_closed(until - opened, by_backstop);
            self.opened = None;
            self.until = None;
        }
    }

    /// The command timeout now: the relaxed one while the window is open.
    pub fn timeout(&mut self, base: Duration, now: Instant, shared: &ClientMaintenance) -> Duration {
        self.expire(now, shared);
        if self.opened.is_some() { base.max(shared.relaxed_timeout) } else { base }
    }

    /// The connection closes: an open window ends now.
    pub fn close(&mut self, now: Instant, shared: &ClientMaintenance) {
        self.expire(now, shared);
        if let Some(opened) = self.opened.take() {
            shared.window_closed(now - opened, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_frame(bytes: &[u8]) -> Option<Notice> {
        let (v, used) = crate::resp::parse(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        Notice::parse(&v)
    }

    /// Every variant the clients' generators send (REFERENCES.md section 3).
    #[test]
    fn every_variant_is_parsed() {
        // cae-resp-proxy's README: bulk name, integer seq and time, bulk endpoint.
        let n = parse_frame(b">4\r\n$6\r\nMOVING\r\n:1\r\n:2\r\n$6\r\nhost:3\r\n").unwrap();
        assert_eq!((n.kind, n.seq, n.time), (Kind::Moving, 1, Some(Duration::from_secs(2))));
        assert_eq!(n.endpoint, Some(HostPort { host: "host".into(), port: 3 }));
        // A null endpoint: RESP3 null, a null bulk, or the text `null`.
        for frame in [
            &b">4\r\n+MOVING\r\n:7\r\n:30\r\n_\r\n"[..],
            b">4\r\n+MOVING\r\n:7\r\n:30\r\n$-1\r\n",
            b">4\r\n$6\r\nMOVING\r\n$1\r\n7\r\n$2\r\n30\r\n$4\r\nnull\r\n",
        ] {
            let n = parse_frame(frame).unwrap();
            assert_eq!((n.kind, n.seq, n.time, n.endpoint), (Kind::Moving, 7, Some(Duration::from_secs(30)), None), "{:?}", String::from_utf8_lossy(frame));
        }
        // go-redis' three-element MOVING.
        assert_eq!(parse_frame(b">3\r\n$6\r\nMOVING\r\n:2\r\n:10\r\n").unwrap().endpoint, None);
        // redis-py's helper: simple strings and a trailing `shards` element.
        let n = parse_frame(b">4\r\n+MIGRATING\r\n:5\r\n:10\r\n+shards\r\n").unwrap();
        assert_eq!((n.kind, n.seq, n.time), (Kind::Migrating, 5, Some(Duration::from_secs(10))));
        assert_eq!(parse_frame(b">3\r\n+MIGRATED\r\n:5\r\n+shards\r\n").unwrap().kind, Kind::Migrated);
        // go-redis e2e: a slot where the time would be, and a two-element FAILING_OVER.
        let n = parse_frame(b">3\r\n$9\r\nMIGRATING\r\n:8\r\n$4\r\nslot\r\n").unwrap();
        assert_eq!((n.kind, n.seq, n.time), (Kind::Migrating, 8, None));
        let n = parse_frame(b">2\r\n$12\r\nFAILING_OVER\r\n:9\r\n").unwrap();
        assert_eq!((n.kind, n.seq, n.time), (Kind::FailingOver, 9, None));
        assert_eq!(parse_frame(b">2\r\n$11\r\nFAILED_OVER\r\n:9\r\n").unwrap().kind, Kind::FailedOver);
        // Cluster API.
        let n = parse_frame(b">3\r\n$10\r\nSMIGRATING\r\n:3\r\n$13\r\n100,2000-2999\r\n").unwrap();
        assert_eq!((n.kind, n.slots.clone()), (Kind::SMigrating, vec![(100, 100), (2000, 2999)]));
        let n = parse_frame(b">3\r\n$9\r\nSMIGRATED\r\n:4\r\n*1\r\n*3\r\n$14\r\n127.0.0.1:7000\r\n$14\r\n127.0.0.1:7001\r\n$9\r\n0-99,5000\r\n").unwrap();
        assert_eq!(n.kind, Kind::SMigrated);
        assert_eq!(n.destinations, vec![HostPort { host: "127.0.0.1".into(), port: 7001 }]);
        assert_eq!(n.slots, vec![(0, 99), (5000, 5000)]);
        // Not notices: a pub/sub push, an array reply, a push with an unknown name.
        assert_eq!(parse_frame(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"), None);
        assert_eq!(parse_frame(b"*2\r\n$6\r\nMOVING\r\n:1\r\n"), None);
        assert_eq!(parse_frame(b">1\r\n$7\r\nUNKNOWN\r\n"), None);
    }

    #[test]
    fn what_the_proxy_sends_parses_back() {
        let ep = HostPort { host: "127.0.0.1".into(), port: 6400 };
        let notices = [
            Notice { kind: Kind::Moving, seq: 1, time: Some(Duration::from_secs(4)), endpoint: Some(ep.clone()), slots: vec![], destinations: vec![] },
            Notice { kind: Kind::Moving, seq: 2, time: Some(Duration::from_secs(4)), endpoint: None, slots: vec![], destinations: vec![] },
            Notice { kind: Kind::Migrating, seq: 3, time: Some(Duration::from_secs(9)), endpoint: None, slots: vec![], destinations: vec![] },
            Notice { kind: Kind::FailedOver, seq: 4, time: None, endpoint: None, slots: vec![], destinations: vec![] },
            Notice { kind: Kind::SMigrating, seq: 5, time: None, endpoint: None, slots: vec![(0, 5460)], destinations: vec![] },
            Notice { kind: Kind::SMigrated, seq: 6, time: None, endpoint: None, slots: vec![(0, 5460)], destinations: vec![ep] },
        ];
        for n in notices {
            let mut buf = Vec::new();
            n.encode(&mut buf);
            assert_eq!(parse_frame(&buf), Some(n));
        }
    }

    #[test]
    fn auto_endpoint_type_follows_the_address() {
        assert_eq!(endpoint_type_wire(EndpointType::Auto, "127.0.0.1"), "internal-ip");
        assert_eq!(endpoint_type_wire(EndpointType::Auto, "10.1.2.3"), "internal-ip");
        assert_eq!(endpoint_type_wire(EndpointType::Auto, "8.8.8.8"), "external-ip");
        assert_eq!(endpoint_type_wire(EndpointType::Auto, "redis.example.com"), "external-fqdn");
        assert_eq!(endpoint_type_wire(EndpointType::None, "127.0.0.1"), "none");
    }

    #[test]
    fn windows_close_with_their_message_or_the_backstop() {
        let shared = ClientMaintenance::new(Mode::On, Duration::from_secs(5), EndpointType::Auto, None);
        let t = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.timeout(Duration::from_secs(1), t, &shared), Duration::from_secs(1));
        w.apply(Kind::Migrating, t, &shared);
        assert_eq!(w.timeout(Duration::from_secs(1), t + Duration::from_secs(1), &shared), Duration::from_secs(5));
        w.apply(Kind::Migrated, t + Duration::from_secs(2), &shared);
        // Relaxed for the post-event period, then back to the configured timeout.
        assert_eq!(w.timeout(Duration::from_secs(1), t + Duration::from_millis(2500), &shared), Duration::from_secs(5));
        assert_eq!(w.timeout(Duration::from_secs(1), t + Duration::from_secs(4), &shared), Duration::from_secs(1));
        // A window nobody closes ends at the backstop, counted as such.
        w.apply(Kind::FailingOver, t + Duration::from_secs(10), &shared);
        assert_eq!(w.timeout(Duration::from_secs(1), t + Duration::from_secs(21), &shared), Duration::from_secs(1));
        let r = shared.report("native");
        assert_eq!((r.relaxed_windows, r.relaxed_backstops), (2, 1));
        assert!((r.relaxed_s - 13.0).abs() < 1e-6, "{}", r.relaxed_s);
    }
}
