//! Bearer tokens: what one is, how it is hashed, and the tokens file that
//! lists the valid ones (by hash only: the file never holds a token).
//!
//! ```toml
//! [[tokens]]
//! tenant = "default"
//! scopes = ["ingest", "query"]
//! sha256 = "…64 hex digits…"
//! name = "checkout exporters"        # optional, shown in logs
//! expires_at = "2027-06-30T00:00:00Z" # optional
//! ```
//!
//! Tokens are 256 random bits, so a plain SHA-256 is enough to store them:
//! there is no password to brute-force, and lookups stay a hash-map probe.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// What every token starts with, so leaked ones are easy to scan for.
const TOKEN_PREFIX: &str = "skein_";
const TOKEN_RANDOM_BYTES: usize = 32;
const MAX_TENANT_LEN: usize = 64;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send OTLP (and Zipkin) data.
    Ingest,
    /// Read: SQL, search, traces, metrics, the UI's API.
    Query,
    /// Operate the cluster (drain, status).
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Query => "query",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "ingest" => Ok(Scope::Ingest),
            "query" => Ok(Scope::Query),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("unknown scope {other:?}: expected ingest, query or admin")),
        }
    }
}

/// One valid token, as the tokens file lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub tenant: String,
    pub scopes: BTreeSet<Scope>,
    /// SHA-256 of the token, lowercase hex.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RFC 3339 UTC time after which the token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl TokenEntry {
    /// The expiry as a time, checked.
    pub fn expiry(&self) -> Result<Option<SystemTime>, String> {
        self.expires_at
            .as_deref()
            .map(|text| {
                humantime::parse_rfc3339(text).map_err(|e| {
                    format!("expires_at {text:?} is not an RFC 3339 UTC time like 2027-01-31T00:00:00Z: {e}")
                })
            })
            .transpose()
    }

    fn validate(&self) -> Result<(), String> {
        validate_tenant(&self.tenant)?;
        if self.scopes.is_empty() {
            return Err("scopes is empty: give at least one of ingest, query, admin".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err("sha256 must be 64 lowercase hex digits (the hash of the token, never the token)".into());
        }
        self.expiry()?;
        Ok(())
    }

    /// The entry as a `[[tokens]]` table, to append to a tokens file.
    pub fn to_toml(&self) -> String {
        // JSON string escapes are valid TOML basic-string escapes.
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let scopes: Vec<String> = self.scopes.iter().map(|s| quote(s.name())).collect();
        let mut out = format!(
            "\n[[tokens]]\ntenant = {}\nscopes = [{}]\nsha256 = {}\n",
            quote(&self.tenant),
            scopes.join(", "),
            quote(&self.sha256)
        );
        if let Some(name) = &self.name {
            out.push_str(&format!("name = {}\n", quote(name)));
        }
        if let Some(expires_at) = &self.expires_at {
            out.push_str(&format!("expires_at = {}\n", quote(expires_at)));
        }
        out
    }
}

/// Tenant names become directory names and object-store prefixes.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    let valid_chars = tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN || !valid_chars {
        return Err(format!(
            "tenant {tenant:?} must be 1 to {MAX_TENANT_LEN} characters of letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// The tokens file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

impl TokensFile {
    /// Parses and checks a tokens file; errors name the entry.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let file: TokensFile = toml::from_str(text).map_err(|e| ModelError::TokensFile(e.into()))?;
        let mut hashes = HashSet::new();
        for (index, entry) in file.tokens.iter().enumerate() {
            let at = |reason: String| ModelError::TokensFile(format!("tokens[{index}]: {reason}").into());
            entry.validate().map_err(at)?;
            if !hashes.insert(entry.sha256.as_str()) {
                return Err(at("the same sha256 is listed twice".into()));
            }
        }
        Ok(file)
    }

    /// The tenants the tokens act for.
    pub fn tenants(&self) -> BTreeSet<&str> {
        self.tokens.iter().map(|t| t.tenant.as_str()).collect()
    }
}

/// SHA-256 of a token, lowercase hex: what the tokens file stores.
pub fn hash_token(token: &str) -> String {
    const_hex::encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()))
}

/// A freshly made token and its tokens-file entry.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: String,
    pub entry: TokenEntry,
}

/// Makes a token from the operating system's randomness.
pub fn create_token(
    tenant: &str,
    scopes: BTreeSet<Scope>,
    name: Option<String>,
    expires_at: Option<String>,
) -> Result<NewToken, ModelError> {
    let mut random = [0u8; TOKEN_RANDOM_BYTES];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| ModelError::TokensFile("the operating system's random source failed".into()))?;
    let token = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random));
    let entry = TokenEntry { tenant: tenant.to_owned(), scopes, sha256: hash_token(&token), name, expires_at };
    entry.validate().map_err(|reason| ModelError::TokensFile(reason.into()))?;
    Ok(NewToken { token, entry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_round_trip_through_the_file() {
        let scopes = BTreeSet::from([Scope::Ingest, Scope::Query]);
        let made = create_token("team-a", scopes.clone(), Some("say \"hi\"".into()), None).expect("token");
        assert!(made.token.starts_with(TOKEN_PREFIX) && made.token.len() > 40, "{}", made.token);
        assert_eq!(made.entry.sha256, hash_token(&made.token));
        let other = create_token("team-a", scopes, None, Some("2030-01-01T00:00:00Z".into())).expect("token");
        assert_ne!(made.token, other.token);
        let text = format!("# tokens\n{}{}", made.entry.to_toml(), other.entry.to_toml());
        let file = TokensFile::parse(&text).expect("parses");
        assert_eq!(file.tokens, vec![made.entry, other.entry]);
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let good = create_token("a", BTreeSet::from([Scope::Query]), None, None).expect("token").entry;
        let cases = [
            ("[[tokens]]\ntenant = \"a\"\nscopes = [\"read\"]\nsha256 = \"00\"\n", "read"),
            (
                &format!(
                    "{}\n[[tokens]]\ntenant = \"../x\"\nscopes = [\"query\"]\nsha256 = \"{}\"\n",
                    good.to_toml(),
                    "0".repeat(64)
                ),
                "tokens[1]: tenant",
            ),
            (&format!("[[tokens]]\ntenant = \"a\"\nscopes = []\nsha256 = \"{}\"\n", "0".repeat(64)), "scopes is empty"),
            ("[[tokens]]\ntenant = \"a\"\nscopes = [\"query\"]\nsha256 = \"not-a-hash\"\n", "64 lowercase hex"),
            (&format!("{}{}", good.to_toml(), good.to_toml()), "listed twice"),
            (
                &format!(
                    "[[tokens]]\ntenant = \"a\"\nscopes = [\"query\"]\nsha256 = \"{}\"\nexpires_at = \"tomorrow\"\n",
                    "0".repeat(64)
                ),
                "RFC 3339",
            ),
            ("[[tokens]]\ntenant = \"a\"\nscopes = [\"query\"]\ntoken = \"x\"\n", "unknown field"),
        ];
        for (text, expected) in cases {
            let err = TokensFile::parse(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
        assert_eq!(TokensFile::parse("").expect("empty file").tokens, vec![]);
    }

    #[test]
    fn scopes_parse_from_flags() {
        assert_eq!("ingest".parse::<Scope>(), Ok(Scope::Ingest));
        assert!("write".parse::<Scope>().is_err_and(|e| e.contains("ingest, query or admin")));
    }
}
