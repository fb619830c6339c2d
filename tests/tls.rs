//! TLS against a real redis-server with TLS: verified with a CA file, refused when the
//! certificate is not trusted (exit 3, saying why), `insecure` as an explicit opt-in, and mutual
//! TLS with and without a client certificate.

mod common;

use std::time::Duration;

use common::{Certs, RedisServer, op_count, read_report, run_in, scratch};

fn write_scenario(dir: &std::path::Path, tls: &str) {
    std::fs::write(
        dir.join("tls.yaml"),
        format!("name: tls\ntarget:\n  url: redis://x\n  tls: {tls}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 1s, workers: 2, rate: 200}}]\n"),
    )
    .unwrap();
}

fn apply(dir: &std::path::Path, server: &RedisServer) -> common::Outcome {
    let url = format!("rediss://127.0.0.1:{}", server.port);
    run_in(dir, &["apply", "tls.yaml", "--target", &url, "--json", "r.json"], &[], Duration::from_secs(60))
}

#[test]
fn tls_is_verified_against_the_given_ca() {
    let certs = Certs::new("certs-verify");
    let conf = certs.server_config(false);
    let server = RedisServer::start(&conf.iter().map(String::as_str).collect::<Vec<_>>());
    let dir = scratch("tls-verify");
    write_scenario(&dir, &format!("{{ca: {}}}", certs.path("ca.crt")));
    let out = apply(&dir, &server);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(op_count(&read_report(&dir.join("r.json")), "p", "w", "GET") > 0);
    assert_eq!(read_report(&dir.join("r.json"))["target"]["tls"], "on");

    // Without the CA the certificate is not trusted: exit 3, and the message says so.
    write_scenario(&dir, "{server_name: localhost}");
    let out = apply(&dir, &server);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("TLS") && out.stderr.contains("UnknownIssuer"), "{}", out.all());

    // A name the certificate does not carry is refused too.
    write_scenario(&dir, &format!("{{ca: {}, server_name: other.example}}", certs.path("ca.crt")));
    let out = apply(&dir, &server);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("not valid for name \"other.example\""), "{}", out.all());

    // `insecure: true` skips verification, and the report says so.
    write_scenario(&dir, "{insecure: true}");
    let out = apply(&dir, &server);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(read_report(&dir.join("r.json"))["target"]["tls"].as_str().unwrap().contains("INSECURE"));
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let certs = Certs::new("certs-mutual");
    let conf = certs.server_config(true);
    let server = RedisServer::start(&conf.iter().map(String::as_str).collect::<Vec<_>>());
    let dir = scratch("tls-mutual");
    write_scenario(&dir, &format!("{{ca: {}, cert: {}, key: {}}}", certs.path("ca.crt"), certs.path("client.crt"), certs.path("client.key")));
    let out = apply(&dir, &server);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(read_report(&dir.join("r.json"))["target"]["tls"], "on (mutual)");

    write_scenario(&dir, &format!("{{ca: {}}}", certs.path("ca.crt")));
    let out = apply(&dir, &server);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("TLS") && out.stderr.contains("client certificate"), "{}", out.all());
}
