//! `[query.jaeger]`: where the Jaeger query API is served. Tempo's API owns
//! `/api/traces/{id}` at the root of the port, so Jaeger's API lives under a
//! base path, as Jaeger's own `query.base-path` setting places it.

use serde::{Deserialize, Serialize};

/// `[query.jaeger]` section of the Skein configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JaegerConfig {
    /// Path prefix of the Jaeger API: `{base_path}/api/traces`, ...
    pub base_path: BasePath,
}

impl Default for JaegerConfig {
    fn default() -> Self {
        Self { base_path: BasePath(DEFAULT_BASE_PATH.to_owned()) }
    }
}

const DEFAULT_BASE_PATH: &str = "/jaeger";

/// A checked base path: `/` followed by one or more `/`-separated segments
/// of URL-safe characters, no trailing slash, and outside `/api` (Skein's
/// and Tempo's API). Invalid values are refused when the config is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BasePath(String);

impl BasePath {
    pub fn new(path: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("jaeger.base_path {path:?} {why}"));
        let Some(rest) = path.strip_prefix('/') else {
            return bad("must start with /");
        };
        if rest.is_empty() {
            return bad("must not be / alone: Tempo's API owns /api/traces at the root");
        }
        if rest.ends_with('/') {
            return bad("must not end with /");
        }
        // Segments become axum route text: no `{`, `}`, `*` or empty segments.
        let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if rest.split('/').any(|segment| segment.is_empty() || !segment.bytes().all(safe)) {
            return bad("must be /-separated segments of letters, digits, -, _, . or ~");
        }
        if rest == "api" || rest.starts_with("api/") {
            return bad("must not be under /api, where Skein's and Tempo's APIs live");
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BasePath {
    type Error = String;
    fn try_from(path: String) -> Result<Self, String> {
        Self::new(&path)
    }
}

impl From<BasePath> for String {
    fn from(path: BasePath) -> String {
        path.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_valid_paths() {
        assert_eq!(JaegerConfig::default().base_path.as_str(), "/jaeger");
        for path in ["/jaeger", "/tools/jaeger", "/j-1_a.b~c", "/apis", "/v1/api"] {
            assert_eq!(BasePath::new(path).expect(path).as_str(), path);
        }
    }

    #[test]
    fn invalid_paths_are_refused_with_the_reason() {
        for (path, why) in [
            ("jaeger", "start with /"),
            ("/", "/ alone"),
            ("", "start with /"),
            ("/jaeger/", "end with /"),
            ("/api", "under /api"),
            ("/api/jaeger", "under /api"),
            ("/a//b", "segments"),
            ("/{id}", "segments"),
            ("/a b", "segments"),
        ] {
            let err = BasePath::new(path).expect_err(path);
            assert!(err.contains(why), "{path:?}: {err}");
        }
    }

    #[test]
    fn parsed_from_config_with_unknown_keys_refused() {
        let config: JaegerConfig = serde_json::from_str(r#"{"base_path": "/tracing"}"#).expect("valid");
        assert_eq!(config.base_path.as_str(), "/tracing");
        let err = serde_json::from_str::<JaegerConfig>(r#"{"base_path": "/api"}"#).expect_err("collides");
        assert!(err.to_string().contains("under /api"), "{err}");
        let err = serde_json::from_str::<JaegerConfig>(r#"{"basepath": "/x"}"#).expect_err("typo");
        assert!(err.to_string().contains("basepath"), "{err}");
        // As the `[query.jaeger]` section of the query config.
        let query: crate::QueryConfig =
            serde_json::from_str(r#"{"jaeger": {"base_path": "/j"}}"#).expect("valid query config");
        assert_eq!(query.jaeger.base_path.as_str(), "/j");
        assert!(serde_json::from_str::<crate::QueryConfig>(r#"{"jaeger": {"base_path": "/"}}"#).is_err());
    }
}
