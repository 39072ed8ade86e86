//! TLS under `https://` and `wss://` streams (rustls, with ring's
//! cryptography): the client configuration made once per run (the roots
//! of `--ca FILE` or of the system, or none at all with `--insecure`;
//! ALPN `http/1.1`), and each connection's session (`c1m_tls`: rustls's
//! unbuffered API, which holds no buffer while the stream is at rest).
//! SNI is the URL's host (none for an IP address, as RFC 6066 says).
//!
//! A session lives in its connection's spill, so a stream in the clear
//! pays nothing for TLS. What a held session costs at rest is in the
//! worker's module doc (measured by `benches/memory.sh`).

use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use c1m_tls::ClientSession;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::UnbufferedClientConnection;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where Debian keeps the system's trusted roots.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What every TLS stream of a run is opened with.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl Tls {
    /// The configuration for streams to `host`: verified against the roots
    /// in `ca` (PEM), the system's without it, or not at all (`insecure`).
    pub(crate) fn new(host: &str, ca: Option<&Path>, insecure: bool) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?;
        let mut config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(roots(ca)?)
                .with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host:?} is not a host name TLS can verify"))?;
        Ok(Tls {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A new session, for a connection being opened.
    pub(crate) fn session(&self) -> io::Result<ClientSession> {
        UnbufferedClientConnection::new(self.config.clone(), self.server_name.clone())
            .map(ClientSession::new)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// The trusted roots: every certificate of `ca`, or of the system.
fn roots(ca: Option<&Path>) -> anyhow::Result<RootCertStore> {
    let path = ca.unwrap_or(Path::new(SYSTEM_ROOTS));
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("reading {}", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("a certificate in {}", path.display()))?;
    }
    if roots.is_empty() {
        bail!(
            "{} holds no certificate; fix: --ca FILE with the server's CA (PEM), or --insecure",
            path.display()
        );
    }
    Ok(roots)
}

/// `--insecure`: any certificate is accepted, but the handshake's
/// signatures are still checked (the session is encrypted, not
/// authenticated).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether an I/O error came from TLS (for the `tls` error class).
pub(crate) use c1m_tls::is_tls_error;
