//! TLS client settings from the scenario: CA bundle (or the system's roots), optional client
//! certificate for mutual TLS, server name, and the explicit `insecure` opt-out of verification.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::scenario::model::Tls;

/// What a TLS connection needs.
#[derive(Clone)]
pub struct TlsSettings {
    /// The rustls configuration, shared by every connection.
    pub config: Arc<ClientConfig>,
    /// Name to verify in the server certificate (`tls.server_name`, else the host).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// Builds the client configuration; errors name the file or setting at fault.
pub fn settings(tls: &Tls) -> Result<TlsSettings, String> {
    // One process-wide provider (ring); a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("invalid PEM in CA file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("CA file {} holds no certificate", path.display()));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let mut config = match &tls.client_cert {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read client certificate {}: {e}", cert.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("invalid PEM in client certificate {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read client key {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate and key do not fit: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    if tls.insecure {
        config.dangerous().set_certificate_verifier(Arc::new(NoVerification));
    }
    Ok(TlsSettings { config: Arc::new(config), server_name: tls.server_name.clone() })
}

/// The name to verify for `host`.
pub fn server_name(settings: &TlsSettings, host: &str) -> Result<ServerName<'static>, String> {
    let name = settings.server_name.as_deref().unwrap_or(host).to_owned();
    ServerName::try_from(name.clone()).map_err(|_| format!("`{name}` is not a valid TLS server name"))
}

/// `insecure: true`: accept any certificate (the plan and report say so).
#[derive(Debug)]
struct NoVerification;

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}
