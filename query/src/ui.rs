//! Serves the web UI embedded by `build.rs` at `/`: files by path,
//! `index.html` for the app's client-side routes, precompressed gzip or
//! brotli bytes chosen by `Accept-Encoding`, hashed assets cached for a year.
//! A binary built with `SKEIN_SKIP_UI=1` answers with a page saying so.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::QueryError;

/// One file of the UI build, with its precompressed variants.
pub(crate) struct Asset {
    pub(crate) path: &'static str,
    pub(crate) body: &'static [u8],
    pub(crate) gzip: Option<&'static [u8]>,
    pub(crate) brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// Vite puts every content-hashed file here; their names change with their bytes.
const HASHED_PREFIX: &str = "/assets/";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` and unhashed files: revalidate, so a new build shows at once.
const REVALIDATE: &str = "no-cache";

const NOT_BUILT_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Skein: UI not built</title></head>\
<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>The Skein web UI is not built into this binary</h1>\
<p>It was built with <code>SKEIN_SKIP_UI=1</code>. Rebuild without it (Node.js 20+ and npm needed): \
<code>cargo build -p skein</code>.</p><p>The HTTP API works as usual: <code>/api/v1/search</code>, \
<code>/api/v1/traces/{id}</code>, <code>POST /api/v1/sql</code>, see docs/api.md.</p></body></html>";

/// The router's fallback: UI files and routes, JSON 404 for unknown API paths.
pub(crate) async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    respond(UI_ASSETS, &method, uri.path(), &headers)
}

fn respond(assets: Option<&[Asset]>, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    let is_api = path.starts_with("/api/") || path == "/api";
    if is_api || (method != Method::GET && method != Method::HEAD) {
        return QueryError::NotFound(format!("no such endpoint: {path}")).into_response();
    }
    let Some(assets) = assets else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], NOT_BUILT_PAGE)
            .into_response();
    };
    let find = |p: &str| assets.iter().find(|a| a.path == p);
    let asset = match find(path) {
        Some(asset) => asset,
        // A missing hashed file is a real 404 (a stale page asking for an
        // old build), not a client route.
        None if path.starts_with(HASHED_PREFIX) => {
            return QueryError::NotFound(format!("no such file: {path}")).into_response();
        }
        None => match find("/index.html") {
            Some(index) => index,
            None => return QueryError::NotFound("the UI build has no index.html".into()).into_response(),
        },
    };
    let cache = if asset.path.starts_with(HASHED_PREFIX) { IMMUTABLE } else { REVALIDATE };
    let (encoding, body) = choose_encoding(asset, headers);
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type(asset.path)),
            (header::CACHE_CONTROL, cache),
            (header::VARY, "accept-encoding"),
        ],
        body,
    )
        .into_response();
    if let Some(encoding) = encoding {
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
}

/// Brotli, then gzip, when the client accepts them and the build made them.
fn choose_encoding(asset: &Asset, headers: &HeaderMap) -> (Option<&'static str>, &'static [u8]) {
    let accepted = headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    if let Some(body) = asset.brotli.filter(|_| accepts(&accepted, "br")) {
        return (Some("br"), body);
    }
    if let Some(body) = asset.gzip.filter(|_| accepts(&accepted, "gzip")) {
        return (Some("gzip"), body);
    }
    (None, asset.body)
}

/// Whether `coding` is listed in `Accept-Encoding` with a non-zero q-value.
fn accepts(values: &[&str], coding: &str) -> bool {
    values.iter().flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts.find_map(|p| p.strip_prefix("q=")).map_or(1.0, |q| q.parse::<f32>().unwrap_or(0.0));
        name.eq_ignore_ascii_case(coding) && q > 0.0
    })
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_ASSETS: &[Asset] = &[
        Asset { path: "/index.html", body: b"<html>app</html>", gzip: None, brotli: None },
        Asset { path: "/assets/app-1a2b.js", body: b"plain js", gzip: Some(b"gz js"), brotli: Some(b"br js") },
        Asset { path: "/favicon.svg", body: b"<svg/>", gzip: None, brotli: None },
    ];

    fn get(path: &str, accept_encoding: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(value) = accept_encoding {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).expect("header"));
        }
        respond(Some(TEST_ASSETS), &Method::GET, path, &headers)
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body").to_vec()
    }

    #[tokio::test]
    async fn hashed_assets_are_cached_and_precompressed() {
        let response = get("/assets/app-1a2b.js", Some("gzip, deflate, br"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(body(response).await, b"br js");

        let response = get("/assets/app-1a2b.js", Some("br;q=0, gzip"));
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(body(response).await, b"gz js");

        let response = get("/assets/app-1a2b.js", None);
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(response).await, b"plain js");
    }

    #[tokio::test]
    async fn client_routes_get_index_html_and_missing_assets_404() {
        for path in ["/", "/trace/abc", "/sql"] {
            let response = get(path, None);
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], REVALIDATE);
            assert_eq!(body(response).await, b"<html>app</html>", "{path}");
        }
        assert_eq!(get("/assets/old-9999.js", None).status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/api/v1/nope", None).status(), StatusCode::NOT_FOUND);
        let post = respond(Some(TEST_ASSETS), &Method::POST, "/", &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn without_a_build_a_page_says_so() {
        let response = respond(None, &Method::GET, "/", &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let text = String::from_utf8(body(response).await).expect("utf8");
        assert!(text.contains("SKEIN_SKIP_UI"), "{text}");
    }
}
