//! mTLS between the roles of a cluster (`[cluster.tls]`): storage nodes
//! serve their internal port (Arrow Flight, gRPC health) over TLS and
//! require a client certificate; collectors, query nodes and storage peers
//! present theirs and check the node's against the same cluster CA. The
//! files are re-read when they change, on both sides.

use std::path::PathBuf;
use std::sync::Arc;

use http::Uri;
use hyper_util::rt::TokioIo;
use parking_lot::RwLock;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::tls::{TlsConfig, TlsReloader, certificates, tls_error};
use crate::ModelError;

/// `[cluster.tls]`: this member's certificate and key and the CA that signs
/// every member's certificate, all PEM. Set all three, on every member, or
/// none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterTlsConfig {
    /// This member's certificate chain (leaf first): its server certificate
    /// on a storage node's internal port and its client certificate towards
    /// storage nodes, so it needs both usages (or none) and the node's
    /// address as a subject alternative name.
    pub cert_file: Option<PathBuf>,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// The cluster CA: only members with a certificate it signed get in.
    pub ca_file: Option<PathBuf>,
}

impl ClusterTlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some() || self.ca_file.is_some()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.enabled() && (self.cert_file.is_none() || self.key_file.is_none() || self.ca_file.is_none()) {
            return Err("cluster.tls needs cert_file, key_file and ca_file together".into());
        }
        Ok(())
    }

    fn server(&self) -> TlsConfig {
        TlsConfig {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_ca_file: self.ca_file.clone(),
        }
    }
}

/// The current server and client TLS configs of one cluster member.
#[derive(Debug)]
pub struct ClusterTls {
    config: ClusterTlsConfig,
    server: Arc<TlsReloader>,
    client: RwLock<Arc<ClientConfig>>,
}

impl ClusterTls {
    /// Loads the files; fails on anything a member could not start with.
    pub fn load(config: ClusterTlsConfig) -> Result<Arc<Self>, ModelError> {
        config.validate().map_err(|reason| ModelError::Tls { path: None, source: reason.into() })?;
        let server = Arc::new(TlsReloader::load(config.server())?);
        let client = build_client(&config)?;
        Ok(Arc::new(Self { config, server, client: RwLock::new(Arc::new(client)) }))
    }

    /// The internal port's server side: client certificates required.
    pub fn server(&self) -> Arc<TlsReloader> {
        Arc::clone(&self.server)
    }

    /// The client config for the next connection to a storage node.
    pub fn client(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.client.read())
    }

    /// The files to watch for rotations.
    pub fn files(&self) -> Vec<PathBuf> {
        self.server.files()
    }

    /// Rebuilds both sides from the files; a side that does not load keeps
    /// its previous config.
    pub fn reload(&self) {
        self.server.reload();
        match build_client(&self.config) {
            Ok(client) => {
                *self.client.write() = Arc::new(client);
                info!(cert_file = ?self.config.cert_file, "cluster client certificate reloaded");
            }
            Err(error) => warn!(%error, "cluster certificates changed but do not load; keeping the previous ones"),
        }
    }

    /// A tonic connector that opens TLS connections to the host and port of
    /// the URI it is given (tonic itself is built without TLS, so endpoints
    /// say `http://`), with the client config current at connect time.
    pub fn connector(
        self: &Arc<Self>,
    ) -> impl tower::Service<
        Uri,
        Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
        Error = std::io::Error,
        Future = impl Future<Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>> + Send,
    > + Clone
    + Send
    + 'static {
        let tls = Arc::clone(self);
        tower::service_fn(move |uri: Uri| {
            let tls = Arc::clone(&tls);
            async move {
                let host = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
                let port = uri.port_u16().unwrap_or(443);
                let name = ServerName::try_from(host.clone()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host} is not a TLS name: {e}"))
                })?;
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let stream = tokio_rustls::TlsConnector::from(tls.client()).connect(name, tcp).await?;
                Ok(TokioIo::new(stream))
            }
        })
    }
}

fn build_client(config: &ClusterTlsConfig) -> Result<ClientConfig, ModelError> {
    let (Some(cert_file), Some(key_file), Some(ca_file)) = (&config.cert_file, &config.key_file, &config.ca_file)
    else {
        return Err(ModelError::Tls { path: None, source: "cert_file, key_file and ca_file are required".into() });
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(ca_file)? {
        roots.add(ca).map_err(|e| tls_error(ca_file, e))?;
    }
    let chain: Vec<CertificateDer<'static>> = certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| tls_error(key_file, e))?;
    let mut client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ModelError::Tls { path: None, source: e.into() })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_error(cert_file, e))?;
    client.alpn_protocols = vec![b"h2".to_vec()];
    Ok(client)
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    use super::*;

    /// A CA and one member certificate for 127.0.0.1, written to `dir`.
    fn member_files(dir: &std::path::Path) -> ClusterTlsConfig {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
        let key = KeyPair::generate().expect("key");
        let cert =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params").signed_by(&key, &ca).expect("cert");
        let config = ClusterTlsConfig {
            cert_file: Some(dir.join("member.pem")),
            key_file: Some(dir.join("member-key.pem")),
            ca_file: Some(dir.join("ca.pem")),
        };
        std::fs::write(config.cert_file.as_ref().expect("set"), cert.pem()).expect("writes");
        std::fs::write(config.key_file.as_ref().expect("set"), key.serialize_pem()).expect("writes");
        std::fs::write(config.ca_file.as_ref().expect("set"), ca.pem()).expect("writes");
        config
    }

    #[test]
    fn all_three_files_or_none() {
        assert!(ClusterTlsConfig::default().validate().is_ok());
        assert!(!ClusterTlsConfig::default().enabled());
        let partial = ClusterTlsConfig { cert_file: Some("c.pem".into()), ..Default::default() };
        assert!(partial.enabled());
        let error = partial.validate().expect_err("partial config");
        assert!(error.contains("cert_file, key_file and ca_file together"), "{error}");
        let error = ClusterTls::load(partial).expect_err("refused at load");
        assert!(error.to_string().contains("together"), "{error}");
    }

    #[test]
    fn loads_both_sides_and_keeps_them_when_a_rotation_is_broken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = member_files(dir.path());
        let tls = ClusterTls::load(config.clone()).expect("loads");
        assert!(tls.server().requires_client_certificates(), "members must present a certificate");
        assert_eq!(tls.client().alpn_protocols, vec![b"h2".to_vec()]);
        assert!(tls.client().client_auth_cert_resolver.has_certs(), "the client presents its certificate");
        assert_eq!(tls.files().len(), 3);

        let before = tls.client();
        std::fs::write(config.key_file.as_ref().expect("set"), "not a key").expect("writes");
        tls.reload();
        assert!(Arc::ptr_eq(&before, &tls.client()), "a broken rotation keeps the previous config");

        let fresh = member_files(dir.path());
        tls.reload();
        assert!(!Arc::ptr_eq(&before, &tls.client()), "a good rotation is picked up");
        assert_eq!(fresh, config, "same paths");

        let missing = ClusterTlsConfig { ca_file: Some(dir.path().join("nope.pem")), ..config };
        let error = ClusterTls::load(missing).expect_err("missing CA file");
        assert!(error.to_string().contains("nope.pem"), "{error}");
    }
}
