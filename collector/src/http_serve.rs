//! The OTLP/HTTP port's connection loop. `axum::serve` gives hyper no
//! timer, so hyper's header-read timeout is off there and a client that
//! opens a connection and sends half a request line holds it forever; this
//! loop is the same (HTTP/1 and HTTP/2, graceful shutdown) with that
//! timeout on. Connections arrive from [`SecureIncoming`], TLS done.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use skein_model::security::SecureIncoming;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Serves `router` on the `incoming` connections until `shutdown` is
/// cancelled, then waits for open connections to finish their requests.
pub(crate) async fn serve(
    mut incoming: SecureIncoming,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Also closes HTTP/1 keep-alive connections idle this long: hyper starts
    // the timer whenever it waits for a request head.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            stream = incoming.next() => match stream {
                Some(stream) => stream,
                None => break,
            },
            () = shutdown.cancelled() => break,
        };
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(router));
            if let Err(error) = watcher.watch(connection).await {
                debug!(%error, "otlp/http connection ended with an error");
            }
        });
    }
    drop(incoming);
    graceful.shutdown().await;
}
