//! One connection to a Redis server: connect, handshake (AUTH/HELLO/SELECT/SETNAME), and
//! request/response on the caller's task — no background task, no channel hop per command.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::tls::{self, TlsSettings};
use crate::client::maintenance::{ClientMaintenance, Mode as MaintMode, Notice, Window};
use crate::resp::{self, CommandWriter, Value};
use crate::scenario::model::{HostPort, Protocol, Secret};

/// A plain or TLS byte stream.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why a command produced no reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnError {
    /// The command timeout passed (the connection is then dropped: a late reply would desync it).
    #[error("timed out")]
    Timeout,
    /// Connect, read or write failed, or the server closed the connection.
    #[error("connection error: {0}")]
    Io(String),
    /// The server's bytes do not parse.
    #[error("{0}")]
    Protocol(#[from] resp::ProtocolError),
    /// The TLS handshake failed (untrusted certificate, wrong name, client certificate refused).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The handshake was refused (wrong password, unknown user, no such database).
    #[error("{0}")]
    Rejected(String),
}

/// Classifies an I/O error: TLS alerts surface as I/O errors on the first read or write.
fn io_error(e: &std::io::Error) -> ConnError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => {
            let hint = match tls {
                rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
                    " (the server requires a client certificate: set `tls.cert` and `tls.key`)"
                }
                rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA | rustls::AlertDescription::BadCertificate) => {
                    " (the server does not trust the client certificate)"
                }
                _ => "",
            };
            ConnError::Tls(format!("{tls}{hint}"))
        }
        None => ConnError::Io(e.to_string()),
    }
}

/// How to open and set up connections.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// Server address.
    pub addr: HostPort,
    /// ACL user.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Database.
    pub db: u32,
    /// RESP version.
    pub protocol: Protocol,
    /// `CLIENT SETNAME` value, so faults can find our connections.
    pub client_name: String,
    /// Limit for TCP connect plus handshake.
    pub connect_timeout: Duration,
    /// TLS, when on.
    pub tls: Option<TlsSettings>,
    /// For sentinel targets: the master's current address, which replaces `addr` when connecting.
    pub follow: Option<std::sync::Arc<super::master::Master>>,
    /// Send READONLY after connecting (cluster replica reads).
    pub readonly: bool,
    /// Counts the commands sent outside the workers' round trips (which count their own per
    /// phase): handshakes, health checks, control commands.
    pub tally: Option<std::sync::Arc<crate::metrics::CommandTally>>,
    /// Node address → fault proxy address, applied when connecting (cluster targets behind the
    /// proxy): slot maps and redirects keep naming the nodes, connections go through the proxies.
    pub via: Option<std::sync::Arc<std::collections::HashMap<HostPort, HostPort>>>,
    /// Maintenance notifications: asked for in the handshake (unless `off`), counted, acted on.
    pub maintenance: Option<std::sync::Arc<ClientMaintenance>>,
}

impl ConnectSpec {
    /// The address to connect to now, and the master generation it belongs to.
    pub fn current(&self) -> (HostPort, u64) {
        let (addr, generation) = match &self.follow {
            Some(m) => (m.addr(), m.generation()),
            None => (self.addr.clone(), 0),
        };
        match self.via.as_ref().and_then(|map| map.get(&addr)) {
            Some(proxy) => (proxy.clone(), generation),
            None => (addr, generation),
        }
    }

    /// Plain RESP2 settings for the tool's own setup connections to `addr` (no TLS, no proxy).
    pub fn setup(addr: &HostPort, password: Option<&Secret>) -> ConnectSpec {
        ConnectSpec {
            addr: addr.clone(),
            username: None,
            password: password.cloned(),
            db: 0,
            protocol: Protocol::Resp2,
            client_name: "redis-test:setup".into(),
            connect_timeout: Duration::from_secs(5),
            tls: None,
            follow: None,
            readonly: false,
            tally: None,
            via: None,
            maintenance: None,
        }
    }

    /// The same settings without the proxy map: the tool's own control connections reach the
    /// nodes directly, so a network fault never holds them (and no maintenance notice moves them).
    pub fn direct(&self) -> ConnectSpec {
        ConnectSpec { via: None, maintenance: None, ..self.clone() }
    }
}

/// An open connection.
pub struct Conn {
    stream: Stream,
    rbuf: Vec<u8>,
    rstart: usize,
    /// Scratch buffer callers encode commands into.
    pub wbuf: Vec<u8>,
    broken: bool,
    /// When the connection last completed a command (for interval health checks).
    pub last_used: Instant,
    /// The master generation it was opened for (sentinel targets): a newer one means it is stale.
    pub generation: u64,
    tally: Option<std::sync::Arc<crate::metrics::CommandTally>>,
    /// The run's maintenance state, when the spec has one (connections are counted by generation
    /// for handoffs).
    maintenance: Option<std::sync::Arc<ClientMaintenance>>,
    /// Whether the server accepted `CLIENT MAINT_NOTIFICATIONS ON`: push messages are then read
    /// for notices.
    notices: bool,
    /// This connection's relaxed window.
    window: Window,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(m) = &self.maintenance {
            self.window.close(Instant::now(), m);
            m.closed(self.generation);
        }
    }
}

impl Conn {
    /// Opens and sets up a connection within `spec.connect_timeout`.
    pub async fn connect(spec: &ConnectSpec) -> Result<Conn, ConnError> {
        tokio::time::timeout(spec.connect_timeout, Self::connect_inner(spec))
            .await
            .map_err(|_| ConnError::Io(format!("connect to {} timed out after {:?}", spec.addr, spec.connect_timeout)))?
    }

    async fn connect_inner(spec: &ConnectSpec) -> Result<Conn, ConnError> {
        let (addr, generation) = spec.current();
        let stream = TcpStream::connect((addr.host.as_str(), addr.port)).await.map_err(|e| ConnError::Io(format!("cannot connect to {addr}: {e}")))?;
        stream.set_nodelay(true).map_err(|e| ConnError::Io(e.to_string()))?;
        let stream = match &spec.tls {
            None => Stream::Tcp(stream),
            Some(settings) => {
                let name = tls::server_name(settings, &addr.host).map_err(ConnError::Tls)?;
                let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&settings.config));
                let s = connector.connect(name, stream).await.map_err(|e| ConnError::Tls(e.to_string()))?;
                Stream::Tls(Box::new(s))
            }
        };
        let mut conn = Conn {
            stream,
            rbuf: Vec::with_capacity(16 * 1024),
            rstart: 0,
            wbuf: Vec::with_capacity(4096),
            broken: false,
            last_used: Instant::now(),
            generation,
            tally: spec.tally.clone(),
            maintenance: None,
            notices: false,
            window: Window::default(),
        };
        conn.handshake(spec).await?;
        if let Some(m) = &spec.maintenance {
            m.opened(generation);
            conn.maintenance = Some(std::sync::Arc::clone(m));
        }
        Ok(conn)
    }

    async fn handshake(&mut self, spec: &ConnectSpec) -> Result<(), ConnError> {
        let user = spec.username.as_deref().unwrap_or("default");
        let mut buf = Vec::new();
        let mut replies = 0;
        if spec.protocol == Protocol::Resp3 {
            let mut args: Vec<&[u8]> = vec![b"HELLO", b"3"];
            if let Some(pw) = &spec.password {
                args.extend_from_slice(&[b"AUTH", user.as_bytes(), pw.expose().as_bytes()]);
            }
            resp::command(&mut buf, &args);
            replies += 1;
        } else if let Some(pw) = &spec.password {
            match &spec.username {
                Some(u) => resp::command(&mut buf, &[b"AUTH", u.as_bytes(), pw.expose().as_bytes()]),
                None => resp::command(&mut buf, &[b"AUTH", pw.expose().as_bytes()]),
            }
            replies += 1;
        }
        if spec.db > 0 {
            CommandWriter::new(&mut buf, 2).arg(b"SELECT").int(i64::from(spec.db));
            replies += 1;
        }
        resp::command(&mut buf, &[b"CLIENT", b"SETNAME", spec.client_name.as_bytes()]);
        replies += 1;
        if spec.readonly {
            resp::command(&mut buf, &[b"READONLY"]);
            replies += 1;
        }
        // Maintenance notifications come as RESP3 pushes: asked for on RESP3 connections only.
        let maint = spec.maintenance.as_ref().filter(|m| m.mode != MaintMode::Off && spec.protocol == Protocol::Resp3);
        // Not tallied: a server that does not know the subcommand does not count it, and the
        // fault proxy answers it itself; the report counts it per connection instead.
        if let Some(t) = &self.tally {
            t.count(&buf);
        }
        if let Some(m) = maint {
            let host = spec.current().0.host;
            resp::command(
                &mut buf,
                &[
                    b"CLIENT",
                    b"MAINT_NOTIFICATIONS",
                    b"ON",
                    b"moving-endpoint-type",
                    crate::client::maintenance::endpoint_type_wire(m.endpoint_type, &host).as_bytes(),
                ],
            );
            replies += 1;
        }
        let mut out = Vec::with_capacity(replies);
        self.send_round_trip(&buf, replies, &mut out).await?;
        if let Some(m) = maint {
            match out.pop() {
                Some(Value::Error(msg)) if m.mode == MaintMode::Auto => m.handshake(false, Some(&msg)),
                Some(Value::Error(msg)) => {
                    m.handshake(false, Some(&msg));
                    return Err(ConnError::Rejected(format!(
                        "CLIENT MAINT_NOTIFICATIONS ON was refused: {msg} (the server does not send maintenance notifications: use `maintenance_notifications: auto`, or rehearse them with a `notify` or `maintenance` fault, whose proxy answers the handshake)"
                    )));
                }
                _ => {
                    m.handshake(true, None);
                    self.notices = true;
                }
            }
        }
        for v in out {
            if let Value::Error(msg) = v {
                // Never echo the command: it holds the password.
                return Err(ConnError::Rejected(msg));
            }
        }
        Ok(())
    }

    /// Whether an I/O error, timeout or protocol error made this connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Sends the bytes in `self.wbuf` (one or more commands) and reads `replies` replies into `out`.
    pub async fn send_wbuf(&mut self, replies: usize, out: &mut Vec<Value>) -> Result<(), ConnError> {
        let buf = std::mem::take(&mut self.wbuf);
        let r = self.roundtrip(&buf, replies, out).await;
        self.wbuf = buf;
        self.wbuf.clear();
        r
    }

    /// Sends `bytes` and reads `replies` replies into `out`; the commands are counted in the
    /// connection's tally.
    pub async fn roundtrip(&mut self, bytes: &[u8], replies: usize, out: &mut Vec<Value>) -> Result<(), ConnError> {
        if let Some(t) = &self.tally
            && !self.broken
        {
            t.count(bytes);
        }
        self.send_round_trip(bytes, replies, out).await
    }

    /// [`Self::roundtrip`] without the tally: for the workers' round trips, which count their
    /// commands per phase themselves (without a lock on the hot path).
    pub async fn send_round_trip(&mut self, bytes: &[u8], replies: usize, out: &mut Vec<Value>) -> Result<(), ConnError> {
        if self.broken {
            return Err(ConnError::Io("connection already broken".into()));
        }
        let r = self.roundtrip_inner(bytes, replies, out).await;
        match &r {
            Ok(()) => self.last_used = Instant::now(),
            Err(_) => self.broken = true,
        }
        r
    }

    async fn roundtrip_inner(&mut self, bytes: &[u8], replies: usize, out: &mut Vec<Value>) -> Result<(), ConnError> {
        self.stream.write_all(bytes).await.map_err(|e| io_error(&e))?;
        let mut got = 0;
        loop {
            got += self.parse_buffered(replies - got, out)?;
            if got == replies {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Moves up to `want` replies already in the read buffer into `out` (maintenance notices
    /// acted on, not counted); returns how many. One pass over what one read brought, without
    /// an await per reply: a pipeline's replies mostly arrive together.
    fn parse_buffered(&mut self, want: usize, out: &mut Vec<Value>) -> Result<usize, ConnError> {
        let mut got = 0;
        while got < want
            && let Some(v) = self.next_buffered()?
        {
            if !self.notice(&v) {
                out.push(v);
                got += 1;
            }
        }
        Ok(got)
    }

    /// The next whole reply (or push message) already in the read buffer, if there is one; the
    /// buffer is emptied once everything in it is parsed.
    fn next_buffered(&mut self) -> Result<Option<Value>, ConnError> {
        if self.rstart == self.rbuf.len() {
            return Ok(None);
        }
        let Some((v, used)) = resp::parse(&self.rbuf[self.rstart..])? else { return Ok(None) };
        self.rstart += used;
        if self.rstart == self.rbuf.len() {
            self.rbuf.clear();
            self.rstart = 0;
        }
        Ok(Some(v))
    }

    /// Whether `v` is a maintenance notice (then acted on, and not a reply).
    fn notice(&mut self, v: &Value) -> bool {
        if !self.notices || !matches!(v, Value::Push(_)) {
            return false;
        }
        let Some(n) = Notice::parse(v) else { return false };
        if let Some(m) = &self.maintenance {
            self.window.apply(n.kind, Instant::now(), m);
            m.received(&n, self.generation);
        }
        true
    }

    /// Whether this connection reads maintenance notices (its command timeout may then relax).
    pub fn reads_notices(&self) -> bool {
        self.notices
    }

    /// [`Self::send_round_trip`] within `timeout`, relaxed while a maintenance window is open on
    /// this connection — also when the notice that opens it arrives while the replies are awaited.
    /// A timeout breaks the connection.
    pub async fn send_round_trip_relaxed(&mut self, bytes: &[u8], replies: usize, out: &mut Vec<Value>, timeout: Duration) -> Result<(), ConnError> {
        if self.broken {
            return Err(ConnError::Io("connection already broken".into()));
        }
        let sent = tokio::time::Instant::now();
        let r = async {
            let deadline = sent + self.relaxed(timeout);
            tokio::time::timeout_at(deadline, self.stream.write_all(bytes)).await.map_err(|_| ConnError::Timeout)?.map_err(|e| io_error(&e))?;
            let mut got = 0;
            while got < replies {
                let deadline = sent + self.relaxed(timeout);
                let v = match tokio::time::timeout_at(deadline, self.read_value()).await {
                    Ok(v) => v?,
                    // A window opened while waiting moves the deadline: wait on.
                    Err(_) if sent + self.relaxed(timeout) > deadline => continue,
                    Err(_) => return Err(ConnError::Timeout),
                };
                if !self.notice(&v) {
                    out.push(v);
                    got += 1;
                }
            }
            Ok(())
        }
        .await;
        match &r {
            Ok(()) => self.last_used = Instant::now(),
            Err(_) => self.broken = true,
        }
        r
    }

    /// The command timeout now: `base`, or the relaxed one while a window is open.
    fn relaxed(&mut self, base: Duration) -> Duration {
        match &self.maintenance {
            Some(m) => self.window.timeout(base, Instant::now(), m),
            None => base,
        }
    }

    /// Reads the next reply (or push message) from the connection.
    pub async fn read_value(&mut self) -> Result<Value, ConnError> {
        loop {
            if let Some(v) = self.next_buffered()? {
                return Ok(v);
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into the read buffer (what was parsed already dropped first).
    async fn fill(&mut self) -> Result<(), ConnError> {
        if self.rstart > 0 {
            self.rbuf.drain(..self.rstart);
            self.rstart = 0;
        }
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await.map_err(|e| {
            self.broken = true;
            io_error(&e)
        })?;
        if n == 0 {
            self.broken = true;
            return Err(ConnError::Io("server closed the connection".into()));
        }
        Ok(())
    }

    /// Sends bytes without waiting for a reply (subscriptions).
    pub async fn send_only(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        if let Some(t) = &self.tally {
            t.count(bytes);
        }
        self.stream.write_all(bytes).await.map_err(|e| {
            self.broken = true;
            ConnError::Io(e.to_string())
        })
    }

    /// Sends one command with a deadline; a timeout breaks the connection.
    pub async fn command(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Value, ConnError> {
        let mut buf = Vec::new();
        resp::command(&mut buf, args);
        let mut out = Vec::with_capacity(1);
        match tokio::time::timeout(timeout, self.roundtrip(&buf, 1, &mut out)).await {
            Ok(r) => r.map(|()| out.pop().unwrap_or(Value::Nil)),
            Err(_) => {
                self.broken = true;
                Err(ConnError::Timeout)
            }
        }
    }

    /// Marks the connection unusable (e.g. after a timeout outside `command`).
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}
