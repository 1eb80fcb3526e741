//! The error type of `skein bench` and of the client setup Skein's own
//! clients share: what failed, in words a user can act on, with the cause
//! kept as its source.

use std::error::Error as StdError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad arguments, or an answer the benchmark cannot use.
    #[error("{0}")]
    Invalid(String),
    /// An operation failed; the message says which, the source why.
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Says what was being done when a result failed or an option was empty.
pub(crate) trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: StdError + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|source| BenchError::Failed { what: what.to_owned(), source: Box::new(source) })
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|source| BenchError::Failed { what: what().into(), source: Box::new(source) })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T> {
        self.ok_or_else(|| BenchError::Invalid(what.to_owned()))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| BenchError::Invalid(what().into()))
    }
}

/// Returns an [`BenchError::Invalid`] with a formatted message.
macro_rules! bail {
    ($($message:tt)*) => {
        return Err($crate::error::BenchError::Invalid(format!($($message)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_cause_as_the_source() {
        let failed: Result<u8> = "x".parse::<u8>().context("reading a byte");
        let error = failed.expect_err("fails");
        assert_eq!(error.to_string(), "reading a byte");
        assert_eq!(error.source().map(|s| s.to_string()).as_deref(), Some("invalid digit found in string"));
        let missing: Result<u8> = None.with_context(|| format!("no {}", "byte"));
        assert!(matches!(missing, Err(BenchError::Invalid(message)) if message == "no byte"));
    }
}
