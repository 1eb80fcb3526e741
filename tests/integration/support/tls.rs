//! Certificates for TLS tests (a CA, a server certificate for 127.0.0.1,
//! client certificates) written as PEM files, and a small HTTPS client on
//! the same rustls the server uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

/// A certificate authority that signs server and client certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub cert_file: PathBuf,
}

/// A certificate and its key, as PEM files.
pub struct TestCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test ca"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let cert_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert_file, issuer.pem()).expect("writes ca");
        Self { issuer, cert_file }
    }

    /// A certificate for `127.0.0.1` and `localhost`, usable by servers and clients.
    pub fn issue(&self, dir: &Path, name: &str) -> TestCert {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        let (cert_file, key_file) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
        std::fs::write(&cert_file, cert.pem()).expect("writes cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("writes key");
        TestCert { cert_file, key_file, der: cert.der().clone() }
    }
}

/// What a TLS client presented and saw.
pub struct HttpsAnswer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
    /// The certificate the server presented.
    pub server_cert: CertificateDer<'static>,
}

/// One HTTPS request over a fresh connection, trusting `ca_file`, with an
/// optional client certificate, bearer token and JSON body. `Err` when the TLS
/// handshake or the exchange fails.
pub async fn https_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ca_file: &Path,
    client: Option<&TestCert>,
    token: Option<&str>,
    json_body: Option<&str>,
) -> Result<HttpsAnswer, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("ca file") {
        roots.add(cert.expect("ca pem")).expect("ca added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(cert) => {
            let chain = vec![CertificateDer::from_pem_file(&cert.cert_file).expect("client cert")];
            let key = PrivateKeyDer::from_pem_file(&cert.key_file).expect("client key");
            builder.with_client_auth_cert(chain, key).expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::from(addr.ip());
    let tls = connector.connect(name, tcp).await.map_err(|e| format!("tls handshake: {e}"))?;
    let server_cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned().expect("server cert");
    let io = hyper_util::rt::TokioIo::new(tls);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if json_body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = Full::new(Bytes::from(json_body.unwrap_or_default().to_owned()));
    let request = request.body(body).expect("request");
    // With TLS 1.3 a refused client certificate shows up here, on the
    // first read after the handshake.
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    Ok(HttpsAnswer { status, headers, body: String::from_utf8_lossy(&body).into_owned(), server_cert })
}
