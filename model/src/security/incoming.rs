//! Accepting connections on an external listener, with or without TLS.
//! Handshakes run in their own tasks under a deadline, so one slow or
//! silent client cannot hold up the accept loop; the number of handshakes
//! in progress and of accepted connections waiting for the server are both
//! bounded.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::TlsReloader;

/// Handshakes in progress at once; more connections wait in the kernel's
/// accept queue.
const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Accepted connections the server has not picked up yet.
const ACCEPTED_QUEUE: usize = 128;
/// How long to pause accepting after an error such as "too many open
/// files", so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A connection, in clear text or over TLS.
#[derive(Debug)]
pub enum MaybeTlsStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(stream) => stream,
            MaybeTlsStream::Tls(stream) => stream.get_ref().0,
        }
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp().peer_addr().ok()
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            MaybeTlsStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            MaybeTlsStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(stream) => stream.is_write_vectored(),
            MaybeTlsStream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            MaybeTlsStream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            MaybeTlsStream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for MaybeTlsStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp().connect_info()
    }
}

/// The connections of one listener, ready for a server: TLS handshakes
/// done when TLS is on, and at least one byte received either way.
#[derive(Debug)]
pub struct SecureIncoming {
    accepted: mpsc::Receiver<MaybeTlsStream>,
    local_addr: SocketAddr,
}

impl SecureIncoming {
    /// Accepts on `listener` until `shutdown`. A connection that completes
    /// no handshake (or, in clear text, sends nothing) within
    /// `first_bytes_timeout` is closed.
    pub fn spawn(
        what: &'static str,
        listener: TcpListener,
        tls: Option<Arc<TlsReloader>>,
        first_bytes_timeout: Duration,
        shutdown: CancellationToken,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(accept_loop(what, listener, tls, first_bytes_timeout, sender, shutdown));
        Ok(Self { accepted, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next ready connection; `None` once the listener has stopped.
    pub async fn next(&mut self) -> Option<MaybeTlsStream> {
        self.accepted.recv().await
    }

    /// The connections as a stream, as tonic's `serve_with_incoming` takes them.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<MaybeTlsStream>> + Send + 'static {
        futures::stream::unfold(self, |mut incoming| async move {
            let stream = incoming.next().await?;
            Some((Ok(stream), incoming))
        })
    }
}

async fn accept_loop(
    what: &'static str,
    listener: TcpListener,
    tls: Option<Arc<TlsReloader>>,
    first_bytes_timeout: Duration,
    sender: mpsc::Sender<MaybeTlsStream>,
    shutdown: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&handshakes).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    warn!(listener = what, %error, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "failed to set TCP_NODELAY");
        }
        let (tls, sender, shutdown) = (tls.clone(), sender.clone(), shutdown.clone());
        tokio::spawn(async move {
            let ready = tokio::select! {
                ready = tokio::time::timeout(first_bytes_timeout, prepare(stream, tls.as_deref())) => ready,
                () = shutdown.cancelled() => return,
            };
            match ready {
                Ok(Ok(stream)) => {
                    // Fails only when the server has stopped. The permit is
                    // held until then, so waiting connections stay bounded.
                    let _ = sender.send(stream).await;
                    drop(permit);
                }
                Ok(Err(error)) => log_refused(what, peer, &error, tls.as_deref()),
                Err(_) => debug!(listener = what, %peer, "connection sent nothing in time; closed"),
            }
        });
    }
}

/// The TLS handshake, or in clear text a wait for the first byte: hyper's
/// header-read timer starts only once it knows the protocol, so a
/// connection that never sends anything would otherwise be held forever.
async fn prepare(stream: TcpStream, tls: Option<&TlsReloader>) -> io::Result<MaybeTlsStream> {
    match tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            Ok(MaybeTlsStream::Tls(Box::new(acceptor.accept(stream).await?)))
        }
        None => {
            let mut first_byte = [0u8; 1];
            stream.peek(&mut first_byte).await?;
            Ok(MaybeTlsStream::Plain(stream))
        }
    }
}

/// A refused handshake is logged where an operator will see it: a client
/// with a wrong certificate, or speaking clear text to a TLS port, is a
/// misconfiguration to fix, not noise. Where client certificates are
/// required (between cluster members, say), it is a warning: a peer that
/// should get in does not.
fn log_refused(what: &'static str, peer: SocketAddr, error: &io::Error, tls: Option<&TlsReloader>) {
    match tls {
        Some(tls) if tls.requires_client_certificates() => {
            warn!(listener = what, %peer, %error, "tls handshake refused")
        }
        Some(_) => info!(listener = what, %peer, %error, "tls handshake refused"),
        None => debug!(listener = what, %peer, %error, "connection closed before its first byte"),
    }
}

/// Errors of one connection that came and went before it was accepted;
/// the listener itself is fine.
fn is_connection_error(error: &io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(error.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}
