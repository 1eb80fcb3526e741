//! Query-string parameters of the HTTP API: decoded once, then read by name
//! with clear errors for unknown or repeated parameters.

use axum::extract::Query;
use axum::http::Uri;

use crate::QueryError;

/// The decoded `?a=b&c=d` pairs of a request, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from_uri(uri: &Uri) -> Result<Self, QueryError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|e| QueryError::InvalidRequest(format!("bad query string: {}", e.body_text())))
    }

    /// Fails on a parameter not in `known`, naming the accepted ones.
    pub(crate) fn only(&self, known: &[&str]) -> Result<&Self, QueryError> {
        match self.0.iter().find(|(name, _)| !known.contains(&name.as_str())) {
            Some((name, _)) => {
                Err(QueryError::InvalidRequest(format!("unknown parameter {name:?}; accepted: {}", known.join(", "))))
            }
            None => Ok(self),
        }
    }

    /// The value of a parameter given at most once; empty values count as absent.
    pub(crate) fn single<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, QueryError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(QueryError::InvalidRequest(format!("parameter {name:?} is given more than once")));
        }
        Ok(first)
    }

    /// Every non-empty value of a repeatable parameter.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::from_uri(&format!("/x?{query}").parse().expect("uri")).expect("params")
    }

    #[test]
    fn reads_single_and_repeated_parameters() {
        let p = params("attr=http.route%3D%2Fcart&attr=a=b&service=cart&name=");
        assert_eq!(p.all("attr").collect::<Vec<_>>(), vec!["http.route=/cart", "a=b"]);
        assert_eq!(p.single("service").expect("once"), Some("cart"));
        assert_eq!(p.single("name").expect("empty"), None);
        assert!(p.single("attr").is_err());
        assert!(p.only(&["attr", "service", "name"]).is_ok());
        let err = p.only(&["attr"]).expect_err("service is unknown");
        assert!(err.to_string().contains("\"service\""), "{err}");
    }
}
