//! OTLP/HTTP wire formats: content negotiation, bounded gzip decompression,
//! and protobuf / OTLP/JSON encoding of requests, responses and errors.
//!
//! Everything here is synchronous CPU work; callers run it off the async
//! workers.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use prost::Message;

use crate::CollectorError;
use crate::signal::Signal;

pub(crate) const PROTOBUF: &str = "application/x-protobuf";
pub(crate) const JSON: &str = "application/json";

/// The body format of a request, which is also the format of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a request declares; anything else is a 415.
    pub(crate) fn of_request(headers: &HeaderMap) -> Result<Self, CollectorError> {
        let Some(value) = headers.get(CONTENT_TYPE) else {
            return Err(CollectorError::UnsupportedMediaType(format!(
                "missing Content-Type: use {PROTOBUF} or {JSON}"
            )));
        };
        match media_type(value.as_bytes()).as_deref() {
            Some(PROTOBUF) => Ok(Encoding::Protobuf),
            Some(JSON) => Ok(Encoding::Json),
            _ => Err(CollectorError::UnsupportedMediaType(format!(
                "unsupported Content-Type {:?}: use {PROTOBUF} or {JSON}",
                String::from_utf8_lossy(value.as_bytes())
            ))),
        }
    }

    /// The encoding for an error body: protobuf when the client sent
    /// protobuf, JSON otherwise (readable for curl and unknown clients).
    pub(crate) fn for_errors(headers: &HeaderMap) -> Self {
        match headers.get(CONTENT_TYPE).and_then(|v| media_type(v.as_bytes())).as_deref() {
            Some(PROTOBUF) => Encoding::Protobuf,
            _ => Encoding::Json,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// The media type of a Content-Type value, lowercased, without parameters
/// such as `; charset=utf-8`.
pub(crate) fn media_type(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let media = text.split(';').next().unwrap_or_default().trim();
    Some(media.to_ascii_lowercase())
}

/// How the request body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Identity,
    Gzip,
}

impl Compression {
    pub(crate) fn of_request(headers: &HeaderMap) -> Result<Self, CollectorError> {
        let mut compression = Compression::Identity;
        for value in headers.get_all(CONTENT_ENCODING) {
            let text = value.to_str().unwrap_or("<non-ascii>");
            for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                match coding.to_ascii_lowercase().as_str() {
                    "identity" => {}
                    "gzip" | "x-gzip" if compression == Compression::Identity => compression = Compression::Gzip,
                    _ => {
                        return Err(CollectorError::UnsupportedMediaType(format!(
                            "unsupported Content-Encoding {text:?}: use gzip or identity"
                        )));
                    }
                }
            }
        }
        Ok(compression)
    }
}

/// The body as sent, decompressed if it was compressed.
pub(crate) fn decompress(body: Vec<u8>, compression: Compression, limit: usize) -> Result<Vec<u8>, CollectorError> {
    match compression {
        Compression::Identity => Ok(body),
        Compression::Gzip => gunzip(&body, limit),
    }
}

/// Decompresses a gzip body, failing as soon as the output would exceed
/// `limit` bytes so a small "gzip bomb" cannot exhaust memory.
pub(crate) fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, CollectorError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    // Read one byte past the limit to tell "exactly at the limit" from "over".
    let mut decoder = MultiGzDecoder::new(body).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| CollectorError::InvalidRequest(format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(CollectorError::PayloadTooLarge { limit });
    }
    Ok(out)
}

/// Decodes an OTLP/JSON export request of signal `S`.
pub(crate) fn decode_json<S: Signal>(body: &[u8]) -> Result<S::Request, CollectorError> {
    let request = serde_json::from_slice(body)
        .map_err(|e| CollectorError::InvalidRequest(format!("invalid OTLP/JSON body: {e}")))?;
    S::check_json(body, &request)?;
    Ok(request)
}

pub(crate) fn encode_response<S: Signal>(response: &S::Response, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        // A full success is `{}` rather than `{"partialSuccess":null}`.
        Encoding::Json if S::is_full_success(response) => b"{}".to_vec(),
        Encoding::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// A `google.rpc.Status` body, as the OTLP/HTTP specification asks for
/// every 4xx and 5xx response.
pub(crate) fn encode_status(code: tonic::Code, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => {
            tonic_types::Status { code: code.into(), message: message.to_owned(), details: vec![] }.encode_to_vec()
        }
        Encoding::Json => serde_json::json!({ "code": i32::from(code), "message": message }).to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).expect("valid header value"));
        }
        map
    }

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).expect("gzip in memory");
        encoder.finish().expect("gzip in memory")
    }

    #[test]
    fn content_type_ignores_parameters_and_case() {
        let of = |ct: &str| Encoding::of_request(&headers(&[(CONTENT_TYPE, ct)]));
        assert_eq!(of("application/x-protobuf").ok(), Some(Encoding::Protobuf));
        assert_eq!(of("Application/JSON; charset=utf-8").ok(), Some(Encoding::Json));
        assert_eq!(of(" application/json ;charset=UTF-8").ok(), Some(Encoding::Json));
        let err = of("text/plain").expect_err("text/plain is unsupported");
        assert_eq!(err.class().http_status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(err.to_string().contains("text/plain"), "{err}");
        let missing = Encoding::of_request(&HeaderMap::new()).expect_err("missing content type");
        assert!(missing.to_string().contains("missing Content-Type"), "{missing}");
        assert_eq!(Encoding::for_errors(&headers(&[(CONTENT_TYPE, "application/x-protobuf")])), Encoding::Protobuf);
        assert_eq!(Encoding::for_errors(&headers(&[(CONTENT_TYPE, "text/plain")])), Encoding::Json);
    }

    #[test]
    fn content_encoding_accepts_gzip_and_identity_only() {
        let of = |ce: &[&str]| {
            let pairs: Vec<_> = ce.iter().map(|v| (CONTENT_ENCODING, *v)).collect();
            Compression::of_request(&headers(&pairs))
        };
        assert_eq!(of(&[]).ok(), Some(Compression::Identity));
        assert_eq!(of(&["identity"]).ok(), Some(Compression::Identity));
        assert_eq!(of(&["GZIP"]).ok(), Some(Compression::Gzip));
        assert_eq!(of(&["x-gzip"]).ok(), Some(Compression::Gzip));
        assert!(of(&["br"]).is_err());
        assert!(of(&["gzip, deflate"]).is_err());
        // Applied twice would need two decompressions; refuse rather than mis-decode.
        assert!(of(&["gzip", "gzip"]).is_err());
    }

    #[test]
    fn gunzip_enforces_the_limit_on_the_output() {
        let data = vec![b'a'; 10_000];
        let compressed = gzip(&data);
        assert!(compressed.len() < 200, "test data should compress well");
        assert_eq!(gunzip(&compressed, 10_000).expect("exactly at the limit"), data);
        let err = gunzip(&compressed, 9_999).expect_err("over the limit");
        assert!(matches!(err, CollectorError::PayloadTooLarge { limit: 9_999 }), "{err}");
        let bad = gunzip(b"not gzip at all", 1000).expect_err("garbage");
        assert!(matches!(bad, CollectorError::InvalidRequest(_)), "{bad}");
        let truncated = gunzip(&compressed[..compressed.len() / 2], 10_000).expect_err("truncated stream");
        assert!(matches!(truncated, CollectorError::InvalidRequest(_)), "{truncated}");
    }

    #[test]
    fn error_bodies_are_google_rpc_status() {
        let proto = encode_status(tonic::Code::InvalidArgument, "bad span", Encoding::Protobuf);
        let status = tonic_types::Status::decode(&proto[..]).expect("protobuf status");
        assert_eq!((status.code, status.message.as_str()), (3, "bad span"));
        let json = encode_status(tonic::Code::Unavailable, "later", Encoding::Json);
        let value: serde_json::Value = serde_json::from_slice(&json).expect("json status");
        assert_eq!(value, serde_json::json!({"code": 14, "message": "later"}));
    }

    #[test]
    fn json_response_is_empty_object_on_full_success() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

        use crate::signal::{PartialSuccess, Traces};
        assert_eq!(encode_response::<Traces>(&Traces::response(None), Encoding::Json), b"{}");
        let partial = Traces::response(Some(PartialSuccess { rejected: 2, message: "bad ids".into() }));
        let value: serde_json::Value =
            serde_json::from_slice(&encode_response::<Traces>(&partial, Encoding::Json)).expect("json response");
        assert_eq!(value, serde_json::json!({"partialSuccess": {"rejectedSpans": 2, "errorMessage": "bad ids"}}));
        let proto = encode_response::<Traces>(&partial, Encoding::Protobuf);
        assert_eq!(ExportTraceServiceResponse::decode(&proto[..]).expect("protobuf response"), partial);
    }

    #[test]
    fn metrics_responses_in_both_encodings() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;

        use crate::signal::{Metrics, PartialSuccess};
        assert_eq!(encode_response::<Metrics>(&Metrics::response(None), Encoding::Json), b"{}");
        assert!(encode_response::<Metrics>(&Metrics::response(None), Encoding::Protobuf).is_empty());
        let partial = Metrics::response(Some(PartialSuccess { rejected: 3, message: "no time".into() }));
        let value: serde_json::Value =
            serde_json::from_slice(&encode_response::<Metrics>(&partial, Encoding::Json)).expect("json response");
        assert_eq!(value, serde_json::json!({"partialSuccess": {"rejectedDataPoints": 3, "errorMessage": "no time"}}));
        let proto = encode_response::<Metrics>(&partial, Encoding::Protobuf);
        assert_eq!(ExportMetricsServiceResponse::decode(&proto[..]).expect("protobuf response"), partial);
    }
}
