//! Which tenant a request acts for. With tokens, the token's tenant; without
//! them, the `X-Scope-OrgID` header (the Tempo/Loki/Mimir convention) when
//! `auth.multi_tenant` is on, else the one tenant `default`. Storage keeps
//! each tenant's data apart.

use std::sync::Arc;

use super::Principal;
use super::tokens::validate_tenant;
use crate::ErrorClass;

/// The tenant of requests that carry neither a token nor `X-Scope-OrgID`.
pub const DEFAULT_TENANT: &str = "default";

/// The header that names the tenant when there are no tokens (lowercase,
/// as HTTP/2 and gRPC metadata carry it).
pub const ORG_ID_HEADER: &str = "x-scope-orgid";

/// The tenant a request acts for, as a request extension: set by the
/// listener's auth and tenancy checks, read by the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTenant(pub Arc<str>);

/// Why a request's tenant could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("invalid X-Scope-OrgID header: {0}")]
    BadHeader(String),
    #[error("the token of tenant {token_tenant:?} cannot act for tenant {asked:?} (X-Scope-OrgID)")]
    Mismatch { token_tenant: Arc<str>, asked: String },
}

impl TenantError {
    pub fn class(&self) -> ErrorClass {
        match self {
            TenantError::BadHeader(_) => ErrorClass::InvalidArgument,
            TenantError::Mismatch { .. } => ErrorClass::PermissionDenied,
        }
    }
}

/// The tenant a request acts for, from its checked token (`principal`) and
/// its `X-Scope-OrgID` header (`org_id`). A token decides, and a header
/// naming another tenant is refused rather than ignored; without a token
/// the header counts only when `multi_tenant` is on (agents that always
/// send it keep working against a single-tenant Skein).
pub fn request_tenant(
    principal: Option<&Principal>,
    org_id: Option<&[u8]>,
    multi_tenant: bool,
) -> Result<Arc<str>, TenantError> {
    let asked = org_id
        .map(|value| {
            let text = std::str::from_utf8(value).map_err(|_| TenantError::BadHeader("not UTF-8".into()))?.trim();
            validate_tenant(text).map_err(TenantError::BadHeader)?;
            Ok::<_, TenantError>(text)
        })
        .transpose()?;
    match (principal, asked) {
        (Some(principal), Some(asked)) if asked != &*principal.tenant => {
            Err(TenantError::Mismatch { token_tenant: Arc::clone(&principal.tenant), asked: asked.to_owned() })
        }
        (Some(principal), _) => Ok(Arc::clone(&principal.tenant)),
        (None, Some(asked)) if multi_tenant => Ok(Arc::from(asked)),
        (None, _) => Ok(Arc::from(DEFAULT_TENANT)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn principal(tenant: &str) -> Principal {
        Principal { token_id: "00".into(), tenant: tenant.into(), scopes: BTreeSet::new(), token_name: None }
    }

    #[test]
    fn the_token_decides_and_the_header_may_only_agree() {
        let acme = principal("acme");
        assert_eq!(&*request_tenant(Some(&acme), None, false).expect("token"), "acme");
        assert_eq!(&*request_tenant(Some(&acme), Some(b"acme"), true).expect("same"), "acme");
        let refused = request_tenant(Some(&acme), Some(b"globex"), true).expect_err("another tenant");
        assert_eq!(refused.class(), ErrorClass::PermissionDenied);
        assert!(refused.to_string().contains("\"globex\""), "{refused}");
    }

    #[test]
    fn without_tokens_the_header_counts_only_when_multi_tenant() {
        assert_eq!(&*request_tenant(None, Some(b"team-a"), true).expect("header"), "team-a");
        assert_eq!(&*request_tenant(None, None, true).expect("no header"), DEFAULT_TENANT);
        assert_eq!(&*request_tenant(None, Some(b"team-a"), false).expect("ignored"), DEFAULT_TENANT);
        for bad in [&b""[..], b"../etc", b"a b", &[0xff]] {
            let error = request_tenant(None, Some(bad), true).expect_err("bad header");
            assert_eq!(error.class(), ErrorClass::InvalidArgument, "{error}");
        }
    }
}
