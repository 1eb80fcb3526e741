//! How Skein's own clients (`skein bench`, `skein cluster status`, `skein
//! storage --drain`) reach a Skein with `[tls]` and `[auth]`: `--ca` or
//! `--insecure` for `https://` endpoints, `--token` for the bearer token.
//! Both HTTP (reqwest) and gRPC (tonic, through a rustls connector) use the
//! same rustls client config.

use std::path::PathBuf;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;

use crate::error::{Context, bail};

/// Makes ring the process's rustls provider (once): reqwest is built with
/// rustls but without a provider of its own, and asks for the process
/// default when a client is built.
pub fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Fails only when one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `reqwest::Client::builder()`, usable: the crypto provider installed.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// `reqwest::Client::new()`, usable: the crypto provider installed.
pub fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// Flags for reaching a Skein over TLS and with a token.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientSecurity {
    /// CA certificate (PEM) to trust for https:// endpoints [default: the system's roots].
    #[arg(long, conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate on https:// endpoints (for testing only).
    #[arg(long)]
    pub insecure: bool,
    /// Bearer token to send (needs the scope of what is called: ingest, query or admin).
    #[arg(long, env = "SKEIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ClientSecurity {
    /// The `Authorization` value (`Bearer <token>`), when a token is given.
    pub fn authorization(&self) -> Option<String> {
        self.token.as_ref().map(|token| format!("Bearer {}", token.trim()))
    }

    /// The `Authorization` header, when a token is given.
    fn headers(&self) -> crate::Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        if let Some(authorization) = self.authorization() {
            let mut value = HeaderValue::from_str(&authorization).context("--token is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        Ok(headers)
    }

    /// An HTTP client that speaks TLS as these flags say and sends the token.
    pub fn http_client(&self, builder: reqwest::ClientBuilder) -> crate::Result<reqwest::Client> {
        install_crypto_provider();
        builder
            .use_preconfigured_tls(self.tls_config(vec![b"http/1.1".to_vec()])?)
            .default_headers(self.headers()?)
            .build()
            .context("building the HTTP client")
    }

    /// The rustls client config: `--ca`, `--insecure` or the system's roots.
    pub fn tls_config(&self, alpn: Vec<Vec<u8>>) -> crate::Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("tls protocol versions")?;
        let mut config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(self.roots()?).with_no_client_auth()
        };
        config.alpn_protocols = alpn;
        Ok(config)
    }

    fn roots(&self) -> crate::Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .with_context(|| format!("reading --ca {}", path.display()))?;
                if certs.is_empty() {
                    bail!("--ca {} holds no PEM certificate", path.display());
                }
                for cert in certs {
                    roots.add(cert).with_context(|| format!("--ca {}", path.display()))?;
                }
            }
            None => {
                // Unreadable system certificates are skipped, as browsers do.
                let native = rustls_native_certs::load_native_certs();
                let _ = roots.add_parsable_certificates(native.certs);
            }
        }
        Ok(roots)
    }

    /// A gRPC channel to `endpoint` (`http://` or `https://`), connected.
    pub async fn grpc_channel(
        &self,
        endpoint: &str,
        configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
    ) -> crate::Result<tonic::transport::Channel> {
        let uri: Uri = endpoint.parse().with_context(|| format!("endpoint {endpoint:?} is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            let endpoint = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
                .with_context(|| format!("endpoint {endpoint:?} is not a gRPC endpoint"))?;
            return configure(endpoint).connect().await.with_context(|| format!("cannot connect to {uri}"));
        }
        // tonic is built without its TLS features: TLS comes from our own
        // connector, so the URI it sees says http.
        let host = uri.host().context("endpoint has no host")?.to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .with_context(|| format!("{host} is not a valid TLS server name"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.tls_config(vec![b"h2".to_vec()])?));
        let address = format!("{host}:{port}");
        let connect = tower::service_fn(move |_: Uri| {
            let (connector, server_name, address) = (connector.clone(), server_name.clone(), address.clone());
            async move {
                let tcp = TcpStream::connect(&address).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        });
        let plain = format!("http://{}", uri.authority().context("endpoint has no host")?);
        let endpoint = tonic::transport::Endpoint::from_shared(plain)
            .with_context(|| format!("endpoint {endpoint:?} is not a gRPC endpoint"))?;
        configure(endpoint).connect_with_connector(connect).await.with_context(|| format!("cannot connect to {uri}"))
    }
}

/// `--insecure`: every certificate is accepted; signatures are still
/// checked so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
