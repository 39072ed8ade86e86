//! TLS on the subscriber listener (`--tls-cert`, `--tls-key`): rustls with
//! ring's cryptography, the certificate chain and key read from PEM once at
//! start-up, ALPN `http/1.1`. Every transport is then served over TLS
//! (`https://`, `wss://`); each connection's session sits in its record's
//! side allocation (`reactor::conn`), read and written through
//! `reactor::link`, so a server without TLS, and its records, pay nothing.
//!
//! What a held session costs at rest (this machine has no kernel TLS, so
//! it is all user space) is written and measured in `reactor::conn`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The TLS configuration every subscriber connection is served with.
#[derive(Clone)]
pub struct TlsConfig(pub(crate) Arc<ServerConfig>);

impl TlsConfig {
    /// From PEM text: the certificate chain (leaf first) and its private key.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> anyhow::Result<TlsConfig> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .context("reading the certificate chain")?;
        if certs.is_empty() {
            anyhow::bail!("no certificate in the certificate file (PEM \"BEGIN CERTIFICATE\")");
        }
        let key = PrivateKeyDer::from_pem_slice(key).context("reading the private key")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the key does not fit the certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig(Arc::new(config)))
    }

    /// From PEM files (`--tls-cert`, `--tls-key`).
    pub fn from_pem_files(cert_chain: &Path, key: &Path) -> anyhow::Result<TlsConfig> {
        let read = |path: &Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        Self::from_pem(&read(cert_chain)?, &read(key)?).with_context(|| {
            format!(
                "--tls-cert {} --tls-key {}",
                cert_chain.display(),
                key.display()
            )
        })
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConfig")
    }
}
