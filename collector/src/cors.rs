//! CORS on the OTLP/HTTP port, so browser pages (`@opentelemetry/sdk-trace-web`
//! with the OTLP/HTTP exporter) on configured origins can post telemetry.
//! Off unless `collector.cors_allowed_origins` lists origins: without CORS
//! headers, browsers keep other sites' pages from posting, as before.

use http::Method;
use http::header::RETRY_AFTER;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::CollectorConfig;
use crate::config::CorsOrigins;

/// The CORS layer for `config`, `None` when no origin is allowed.
pub(crate) fn layer(config: &CollectorConfig) -> Result<Option<CorsLayer>, String> {
    let Some(origins) = config.cors_origins()? else {
        return Ok(None);
    };
    let origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list),
    };
    let layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::POST])
        // Exporters send Content-Type and, with compression, Content-Encoding;
        // users add their own (`headers` of the exporter config, e.g. an API
        // key). Echoing what the preflight asks for allows all of them; no
        // credentials are ever allowed, so this opens nothing else.
        .allow_headers(AllowHeaders::mirror_request())
        // The exporters honour Retry-After on 429 and 503, if they can read it.
        .expose_headers([RETRY_AFTER])
        .max_age(config.cors_max_age);
    Ok(Some(layer))
}
