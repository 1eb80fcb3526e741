//! The OTLP/HTTP port's accept loop. `axum::serve` gives hyper no timer, so
//! hyper's header-read timeout is off there and a client that opens a
//! connection and sends half a request line holds it forever; this loop is
//! the same (HTTP/1 and HTTP/2, graceful shutdown) with that timeout on.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long to pause accepting after an error such as "too many open
/// files", so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops
/// accepting and waits for open connections to finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
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
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    warn!(%error, "otlp/http accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "failed to set TCP_NODELAY");
        }
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            // hyper's timer starts once it knows the protocol, which takes the
            // first bytes; a connection that sends none would wait forever.
            let mut first_byte = [0u8; 1];
            tokio::select! {
                first = tokio::time::timeout(header_read_timeout, stream.peek(&mut first_byte)) => {
                    if first.is_err() {
                        debug!("otlp/http connection sent nothing; closed");
                        return;
                    }
                }
                () = shutdown.cancelled() => return,
            }
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(router));
            if let Err(error) = watcher.watch(connection).await {
                debug!(%error, "otlp/http connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection that came and went before it was accepted;
/// the listener itself is fine.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(error.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}
