//! Security of the external listeners (OTLP/gRPC, OTLP/HTTP and the query
//! API): TLS with certificates reloaded from disk, and bearer tokens bound
//! to a tenant and scopes.
//!
//! A role builds one [`ListenerSecurity`] from the `[tls]` and `[auth]`
//! config sections. Each listener accepts through [`SecureIncoming`], which
//! runs TLS handshakes off the accept loop (bounded, with a deadline) and
//! yields [`MaybeTlsStream`]s to hyper or tonic; each request is then
//! checked by [`Authenticator::authorize`] for the scope its endpoint needs
//! before it reaches a handler. [`watch_files`] re-reads the certificate and
//! tokens files when they change, so rotations need no restart.
//! [`ClusterTls`] is the same for the ports between the roles of a cluster:
//! mTLS against the cluster's own CA.

mod auth;
mod cluster_tls;
mod incoming;
mod tenancy;
mod tls;
mod tokens;
mod watch;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use auth::{AuthConfig, AuthError, Authenticator, Principal};
pub use cluster_tls::{ClusterTls, ClusterTlsConfig};
pub use incoming::{MaybeTlsStream, SecureIncoming};
pub use tenancy::{DEFAULT_TENANT, ORG_ID_HEADER, RequestTenant, TenantError, request_tenant};
pub use tls::{TlsConfig, TlsReloader};
pub use tokens::{NewToken, Scope, TokenEntry, TokensFile, create_token, hash_token, validate_tenant};
pub use watch::watch_files;

use crate::ModelError;

/// What protects one role's external listeners: TLS when `[tls]` is set,
/// bearer-token checks when `[auth]` is set.
#[derive(Debug, Clone, Default)]
pub struct ListenerSecurity {
    pub tls: Option<Arc<TlsReloader>>,
    pub auth: Option<Arc<Authenticator>>,
    /// Without tokens, `X-Scope-OrgID` chooses the tenant (`auth.multi_tenant`).
    pub multi_tenant: bool,
}

impl ListenerSecurity {
    /// Loads the certificates and the tokens file; fails on anything a
    /// listener could not start with.
    pub fn load(tls: &TlsConfig, auth: &AuthConfig) -> Result<Self, ModelError> {
        let tls = if tls.enabled() { Some(Arc::new(TlsReloader::load(tls.clone())?)) } else { None };
        let auth_checks = match &auth.tokens_file {
            Some(path) => Some(Arc::new(Authenticator::load(path.clone())?)),
            None => None,
        };
        Ok(Self { tls, auth: auth_checks, multi_tenant: auth.multi_tenant })
    }

    /// The tenant a request acts for: see [`request_tenant`].
    pub fn tenant(&self, principal: Option<&Principal>, org_id: Option<&[u8]>) -> Result<Arc<str>, TenantError> {
        request_tenant(principal, org_id, self.multi_tenant)
    }

    /// Re-reads the certificate and tokens files when they change, until
    /// `shutdown`; a file that no longer loads keeps the previous version.
    pub fn spawn_reloads(&self, shutdown: &CancellationToken) {
        if let Some(tls) = &self.tls {
            let tls = Arc::clone(tls);
            tokio::spawn(watch_files(tls.files(), shutdown.clone(), move || tls.reload()));
        }
        if let Some(auth) = &self.auth {
            let auth = Arc::clone(auth);
            tokio::spawn(watch_files(vec![auth.path().to_path_buf()], shutdown.clone(), move || auth.reload()));
        }
    }
}
