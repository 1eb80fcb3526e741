//! Checking bearer tokens: the `[auth]` config section, the table of valid
//! tokens (re-read when the tokens file changes) and the one check every
//! endpoint runs, whichever transport it is on.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::tokens::{Scope, TokensFile, hash_token};
use crate::{ErrorClass, ModelError};

/// `[auth]`: with a tokens file, every OTLP and query request needs a
/// bearer token with the scope of its endpoint; without one, none does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The tokens file (see `skein token create`); re-read when it changes.
    pub tokens_file: Option<PathBuf>,
    /// Without a tokens file, let the `X-Scope-OrgID` header choose the
    /// tenant (absent: `default`). With one, each token's tenant decides.
    pub multi_tenant: bool,
}

/// Who a request comes from, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's SHA-256 (hex): identifies the token without revealing it.
    pub token_id: Arc<str>,
    pub tenant: Arc<str>,
    pub scopes: BTreeSet<Scope>,
    /// The token's name in the tokens file, for logs.
    pub token_name: Option<Arc<str>>,
}

/// Why a request was refused. Missing or unknown tokens are 401 /
/// UNAUTHENTICATED, a token without the scope 403 / PERMISSION_DENIED;
/// OTLP clients retry neither.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send the header `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("unknown or revoked token")]
    Unknown,
    #[error("the token expired at {expires_at}")]
    Expired { expires_at: String },
    #[error("the token of tenant {tenant:?} lacks the {scope} scope this endpoint needs")]
    Forbidden { tenant: Arc<str>, scope: Scope },
}

impl AuthError {
    pub fn class(&self) -> ErrorClass {
        match self {
            AuthError::Forbidden { .. } => ErrorClass::PermissionDenied,
            _ => ErrorClass::Unauthenticated,
        }
    }
}

#[derive(Debug, Default)]
struct TokenTable {
    by_hash: HashMap<String, (Principal, Option<SystemTime>)>,
}

impl TokenTable {
    fn from_file(file: TokensFile) -> Result<Self, ModelError> {
        let mut by_hash = HashMap::with_capacity(file.tokens.len());
        for entry in file.tokens {
            let expiry = entry.expiry().map_err(|reason| ModelError::TokensFile(reason.into()))?;
            let principal = Principal {
                token_id: Arc::from(entry.sha256.as_str()),
                tenant: Arc::from(entry.tenant.as_str()),
                scopes: entry.scopes,
                token_name: entry.name.as_deref().map(Arc::from),
            };
            by_hash.insert(entry.sha256, (principal, expiry));
        }
        Ok(Self { by_hash })
    }
}

/// The valid tokens of one process.
#[derive(Debug)]
pub struct Authenticator {
    path: PathBuf,
    table: RwLock<Arc<TokenTable>>,
}

impl Authenticator {
    /// Reads the tokens file; a missing or invalid file is an error (a
    /// server that was asked to check tokens must not start without them).
    pub fn load(path: PathBuf) -> Result<Self, ModelError> {
        let table = read_table(&path)?;
        if table.by_hash.is_empty() {
            warn!(path = %path.display(), "the tokens file lists no tokens: every request will be refused");
        }
        Ok(Self { path, table: RwLock::new(Arc::new(table)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many tokens are valid now.
    pub fn token_count(&self) -> usize {
        self.table.read().by_hash.len()
    }

    /// Re-reads the tokens file; a file that no longer parses keeps the
    /// previous tokens (and says why), so a bad edit locks nobody out.
    pub fn reload(&self) {
        match read_table(&self.path) {
            Ok(table) => {
                let tokens = table.by_hash.len();
                *self.table.write() = Arc::new(table);
                info!(path = %self.path.display(), tokens, "tokens file reloaded");
            }
            Err(error) => {
                warn!(path = %self.path.display(), %error, "tokens file changed but does not load; keeping the previous tokens")
            }
        }
    }

    /// Checks the value of an `Authorization` header for `scope`.
    pub fn authorize(&self, authorization: Option<&[u8]>, scope: Scope) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let value = std::str::from_utf8(value).map_err(|_| AuthError::NotBearer)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let table = Arc::clone(&self.table.read());
        let (principal, expiry) = table.by_hash.get(&hash_token(token.trim())).ok_or(AuthError::Unknown)?;
        if let Some(expiry) = expiry
            && SystemTime::now() >= *expiry
        {
            return Err(AuthError::Expired { expires_at: humantime::format_rfc3339_seconds(*expiry).to_string() });
        }
        if !principal.scopes.contains(&scope) {
            return Err(AuthError::Forbidden { tenant: Arc::clone(&principal.tenant), scope });
        }
        Ok(principal.clone())
    }
}

fn read_table(path: &Path) -> Result<TokenTable, ModelError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ModelError::TokensFileRead { path: path.to_path_buf(), source })?;
    TokenTable::from_file(TokensFile::parse(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::create_token;

    fn write(path: &Path, entries: &[&super::super::TokenEntry]) {
        let text: String = entries.iter().map(|e| e.to_toml()).collect();
        std::fs::write(path, text).expect("writes tokens file");
    }

    #[test]
    fn tokens_are_checked_for_presence_validity_expiry_and_scope() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        let ingest = create_token("acme", BTreeSet::from([Scope::Ingest]), Some("exporters".into()), None).expect("t");
        let expired =
            create_token("acme", BTreeSet::from([Scope::Query]), None, Some("2001-01-01T00:00:00Z".into())).expect("t");
        write(&path, &[&ingest.entry, &expired.entry]);
        let auth = Authenticator::load(path.clone()).expect("loads");

        let bearer = |token: &str| format!("Bearer {token}").into_bytes();
        let principal = auth.authorize(Some(&bearer(&ingest.token)), Scope::Ingest).expect("authorized");
        assert_eq!((&*principal.tenant, principal.token_name.as_deref()), ("acme", Some("exporters")));
        let lower = format!("bearer  {}", ingest.token).into_bytes();
        assert!(auth.authorize(Some(&lower), Scope::Ingest).is_ok(), "the scheme is case-insensitive");

        let refused = |header: Option<&[u8]>, scope| auth.authorize(header, scope).expect_err("refused");
        assert_eq!(refused(None, Scope::Ingest), AuthError::Missing);
        assert_eq!(refused(Some(b"Basic dXNlcjpwdw=="), Scope::Ingest), AuthError::NotBearer);
        assert_eq!(refused(Some(&bearer("skein_nope")), Scope::Ingest), AuthError::Unknown);
        assert!(matches!(refused(Some(&bearer(&expired.token)), Scope::Query), AuthError::Expired { .. }));
        let forbidden = refused(Some(&bearer(&ingest.token)), Scope::Query);
        assert_eq!(forbidden.class(), ErrorClass::PermissionDenied);
        assert_eq!(refused(None, Scope::Query).class(), ErrorClass::Unauthenticated);
    }

    #[test]
    fn reload_picks_up_removals_and_keeps_the_old_table_on_a_bad_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        let first = create_token("acme", BTreeSet::from([Scope::Query]), None, None).expect("t");
        let second = create_token("acme", BTreeSet::from([Scope::Query]), None, None).expect("t");
        write(&path, &[&first.entry, &second.entry]);
        let auth = Authenticator::load(path.clone()).expect("loads");
        let header = |token: &str| format!("Bearer {token}").into_bytes();

        write(&path, &[&second.entry]);
        auth.reload();
        assert_eq!(auth.authorize(Some(&header(&first.token)), Scope::Query), Err(AuthError::Unknown));
        assert!(auth.authorize(Some(&header(&second.token)), Scope::Query).is_ok());

        std::fs::write(&path, "[[tokens]]\nnot toml at all").expect("writes");
        auth.reload();
        assert!(auth.authorize(Some(&header(&second.token)), Scope::Query).is_ok(), "a bad edit locks nobody out");
    }

    #[test]
    fn loading_refuses_missing_files_and_takes_tokens_of_several_tenants() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Authenticator::load(dir.path().join("absent.toml")).expect_err("missing");
        assert!(err.to_string().contains("absent.toml"), "{err}");
        let path = dir.path().join("tokens.toml");
        let a = create_token("team-a", BTreeSet::from([Scope::Query]), None, None).expect("t");
        let b = create_token("team-b", BTreeSet::from([Scope::Query]), None, None).expect("t");
        write(&path, &[&a.entry, &b.entry]);
        let auth = Authenticator::load(path).expect("tenants are kept apart");
        let principal = auth.authorize(Some(format!("Bearer {}", b.token).as_bytes()), Scope::Query).expect("b");
        assert_eq!(&*principal.tenant, "team-b");
    }
}
