//! A small HTTP/1.1 client for the exporters (OTLP over HTTP, the Pushgateway): hyper over TCP or
//! TLS (rustls with the system's roots, or a CA file), gzip bodies when asked, each request bounded
//! in time, retryable answers (429, 502, 503, 504, and connection failures) retried with backoff.
//! An exporter's failure never changes a run's result: callers count and log it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Where requests go: `http://host:port/base` or `https://…`.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    /// Path prefix without the trailing slash (`""` or `/otlp`).
    base: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `Basic …` from `user:password@` in the URL (a secret: never shown).
    authorization: Option<String>,
}

/// The URL as it may be shown: `user:password@` becomes `***@`.
pub fn redact(url: &str) -> String {
    match split_credentials(url) {
        (bare, Some(_)) => match bare.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://***@{rest}"),
            None => bare,
        },
        (bare, None) => bare,
    }
}

/// Splits `user:password@` off an `http(s)://` URL: the URL without it, and the value of an
/// `Authorization: Basic …` header carrying them (percent-decoded, as RFC 3986 writes them).
pub fn split_credentials(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_owned(), None) };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return (url.to_owned(), None) };
    let userinfo = percent_decode(&rest[..at]);
    use base64::Engine as _;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(userinfo.as_bytes()));
    (format!("{scheme}://{}", &rest[at + 1..]), Some(basic))
}

/// `%XX` sequences decoded (invalid ones left as they are); the rest unchanged.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a request got back.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body, at most 64 KiB of it.
    pub body: Vec<u8>,
}

/// How a request is sent.
pub struct Send<'a> {
    /// `POST`, `PUT`.
    pub method: &'a str,
    /// Path after the endpoint's base.
    pub path: &'a str,
    /// Content type of the body.
    pub content_type: &'a str,
    /// Extra headers (secrets among them: never logged).
    pub headers: &'a [(String, String)],
    /// Compress the body with gzip (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Whole time for all attempts.
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}{}", if self.tls.is_some() { "https" } else { "http" }, self.host, self.port, self.base)
    }
}

impl Endpoint {
    /// Parses `http://` or `https://` URLs; `https` verifies the server against `ca` (a PEM file)
    /// when given, else the system's roots.
    pub fn parse(url: &str, ca: Option<&std::path::Path>) -> Result<Endpoint, String> {
        let (bare, authorization) = split_credentials(url);
        let url = bare.as_str();
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{url}`: the URL must start with http:// or https://"));
        };
        let (authority, base) = rest.split_once('/').map_or((rest, String::new()), |(a, b)| (a, format!("/{}", b.trim_end_matches('/'))));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h.trim_start_matches('[').trim_end_matches(']').to_owned(), p.parse().map_err(|_| format!("`{url}`: bad port `{p}`"))?)
            }
            _ => (authority.trim_start_matches('[').trim_end_matches(']').to_owned(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("`{url}`: no host"));
        }
        let tls = if tls { Some(Arc::new(client_config(ca)?)) } else { None };
        Ok(Endpoint { host, port, base, tls, authorization })
    }

    /// Sends `body`, retrying retryable failures with backoff (100 ms, doubling) within the timeout.
    pub async fn send(&self, how: &Send<'_>, body: &[u8]) -> Result<Answer, String> {
        let payload = if how.gzip { Bytes::from(gzip(body)?) } else { Bytes::copy_from_slice(body) };
        let deadline = tokio::time::Instant::now() + how.timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.once(how, payload.clone())).await;
            let outcome = match attempt {
                Err(_) => return Err("timed out".into()),
                Ok(r) => r,
            };
            let retry = match &outcome {
                Ok(a) => matches!(a.status, 429 | 502 | 503 | 504),
                Err(e) => e.starts_with("connect"),
            };
            if !retry || tokio::time::Instant::now() + backoff >= deadline {
                return outcome;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn once(&self, how: &Send<'_>, body: Bytes) -> Result<Answer, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| format!("TLS server name `{}`: {e}", self.host))?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(cfg)).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
                self.exchange(TokioIo::new(stream), how, body).await
            }
            None => self.exchange(TokioIo::new(tcp), how, body).await,
        }
    }

    async fn exchange<S>(&self, io: S, how: &Send<'_>, body: Bytes) -> Result<Answer, String>
    where
        S: hyper::rt::Read + hyper::rt::Write + Unpin + std::marker::Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await.map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let authority = if (self.tls.is_some() && self.port == 443) || (self.tls.is_none() && self.port == 80) {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut req = hyper::Request::builder()
            .method(how.method)
            .uri(format!("{}{}", self.base, how.path))
            .header("host", authority)
            .header("content-type", how.content_type)
            .header("user-agent", concat!("redis-test/", env!("CARGO_PKG_VERSION")));
        if how.gzip {
            req = req.header("content-encoding", "gzip");
        }
        for (k, v) in how.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        // Credentials in the URL go as Basic auth, unless a header says otherwise.
        if let Some(auth) = self.authorization.as_ref().filter(|_| !how.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))) {
            req = req.header("authorization", auth.as_str());
        }
        let req = req.body(Full::new(body)).map_err(|e| format!("request: {e}"))?;
        let result = async {
            let resp = sender.send_request(req).await.map_err(|e| format!("HTTP: {e}"))?;
            let status = resp.status().as_u16();
            let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
            Ok(Answer { status, body })
        }
        .await;
        driver.abort();
        result
    }
}

/// rustls settings: the CA file's certificates, or the system's roots.
pub fn client_config(ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: rustls::pki_types::CertificateDer<'static> = cert.map_err(|e| format!("CA file {}: {e:?}", path.display()))?;
                roots.add(cert).map_err(|e| format!("CA file {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("CA file {}: no PEM certificate in it", path.display()));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `body` compressed with gzip.
pub fn gzip(body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), flate2::Compression::fast());
    enc.write_all(body).map_err(|e| format!("gzip: {e}"))?;
    enc.finish().map_err(|e| format!("gzip: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_with_their_defaults() {
        let e = Endpoint::parse("http://127.0.0.1:9091", None).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.base.as_str(), e.tls.is_some()), ("127.0.0.1", 9091, "", false));
        let e = Endpoint::parse("http://collector/otlp/", None).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.base.as_str()), ("collector", 80, "/otlp"));
        let e = Endpoint::parse("http://[::1]:4318", None).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 4318));
        assert!(Endpoint::parse("ftp://x", None).unwrap_err().contains("http:// or https://"));
        assert!(Endpoint::parse("http://x:y", None).unwrap_err().contains("bad port"));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"redis_operations_total 1\n".repeat(100);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&body).unwrap()[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, body);
    }
}
