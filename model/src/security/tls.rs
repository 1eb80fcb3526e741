//! TLS for the external listeners: the `[tls]` config section and the
//! server config built from it, swapped in place when the files change
//! (cert-manager rotates certificates without restarting anything).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::ModelError;

/// `[tls]`: certificate and key in PEM; with `client_ca_file`, clients must
/// present a certificate signed by one of its CAs (mTLS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server certificate chain (leaf first), PEM.
    pub cert_file: Option<PathBuf>,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_file: Option<PathBuf>,
    /// CA certificates that sign client certificates, PEM; set to require them.
    pub client_ca_file: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some() || self.client_ca_file.is_some()
    }

    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), Some(_)) | (None, None) => {}
            (Some(_), None) => return Err("cert_file is set but key_file is not; set both".into()),
            (None, Some(_)) => return Err("key_file is set but cert_file is not; set both".into()),
        }
        if self.client_ca_file.is_some() && self.cert_file.is_none() {
            return Err("client_ca_file needs cert_file and key_file: client certificates are checked over TLS".into());
        }
        Ok(())
    }
}

/// The current TLS server config of a set of listeners.
#[derive(Debug)]
pub struct TlsReloader {
    config: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsReloader {
    pub fn load(config: TlsConfig) -> Result<Self, ModelError> {
        config.validate().map_err(|reason| ModelError::Tls { path: None, source: reason.into() })?;
        let server = build(&config)?;
        Ok(Self { config, current: RwLock::new(Arc::new(server)) })
    }

    /// The server config for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read())
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.config.client_ca_file.is_some()
    }

    /// The files to watch for rotations.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.config.cert_file, &self.config.key_file, &self.config.client_ca_file]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Rebuilds the server config from the files; on failure (a rotation
    /// caught half-written, say) keeps serving the previous one.
    pub fn reload(&self) {
        match build(&self.config) {
            Ok(server) => {
                *self.current.write() = Arc::new(server);
                info!(cert_file = ?self.config.cert_file, "tls certificates reloaded");
            }
            Err(error) => warn!(%error, "tls certificates changed but do not load; keeping the previous ones"),
        }
    }
}

fn build(config: &TlsConfig) -> Result<ServerConfig, ModelError> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Err(ModelError::Tls { path: None, source: "cert_file and key_file are required".into() });
    };
    let chain = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| tls_error(key_file, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ModelError::Tls { path: None, source: e.into() })?;
    let builder = match &config.client_ca_file {
        Some(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certificates(ca_file)? {
                roots.add(ca).map_err(|e| tls_error(ca_file, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_error(ca_file, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| tls_error(cert_file, e))?;
    // HTTP/2 (gRPC and HTTP clients that offer it) or HTTP/1.1.
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server)
}

pub(super) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ModelError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, e))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

pub(super) fn tls_error(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ModelError {
    ModelError::Tls { path: Some(path.to_path_buf()), source: source.into() }
}
