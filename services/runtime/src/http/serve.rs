//! [`serve`]: what `axum::serve` does, plus limits on slow clients, which it lacks (it sets no
//! timer, so hyper's header timeout never runs). A client that has not sent a whole request
//! head within [`HEADER_READ_TIMEOUT`] is disconnected, so a slowloris cannot hold
//! connections; one whose body stalls for [`BODY_READ_TIMEOUT`] gets a 400 `unreadable-body`;
//! a head larger than hyper's buffer (about 400 KB) gets 431.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// Longest a client may take to send a request head (also how long an idle keep-alive
/// connection stays open): hyper's documented default, which needs a timer to take effect.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a request body may go without a new byte.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may be slow; [`serve`] uses the defaults.
#[derive(Debug, Clone, Copy)]
pub struct SlowClientLimits {
    pub header_read: Duration,
    pub body_read: Duration,
}

impl Default for SlowClientLimits {
    fn default() -> Self {
        Self {
            header_read: HEADER_READ_TIMEOUT,
            body_read: BODY_READ_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish its request in flight, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, app, shutdown, SlowClientLimits::default()).await
}

/// [`serve`] with other limits on slow clients (tests use short ones).
pub async fn serve_with_limits(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: SlowClientLimits,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        connections.spawn(serve_connection(stream, app.clone(), limits, stop.clone()));
    }
    drop(listener);
    stop.cancel();
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: SlowClientLimits,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let request = request.map(|body| TimeoutBody::new(limits.body_read, body));
        let response: std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> =
            Box::pin(app.clone().oneshot(request));
        response
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%error, "connection ended");
    }
}
