//! The accept loop: admits connections under the [`ConnectionLimit`], serves each on its own
//! task with hyper's header deadline, and on shutdown lets each finish the request it is on.

use std::{future::Future, net::SocketAddr};

use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{ConnectionLimit, ServeConfig};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves connections accepted on `listener`, each with the service `make` gives for its
/// client address, until `shutdown` completes; then waits for the open connections to finish
/// their requests. A connection over a bound is closed unanswered.
pub async fn serve<M, S, B>(
    listener: TcpListener,
    config: ServeConfig,
    mut make: M,
    shutdown: impl Future<Output = ()>,
) where
    M: FnMut(SocketAddr) -> S,
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let limit = ConnectionLimit::new(&config);
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            // Finished connections are reaped as they end, so the set stays as large as the
            // open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::debug!(%error, "http.accept.failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let permit = match limit.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                // Debug, not warn: a client that opens connections in a loop would flood the log.
                tracing::debug!(%peer, %refused, "http.connection.refused");
                continue;
            }
        };
        if let Err(error) = socket.set_nodelay(true) {
            tracing::debug!(%error, "http.accept.nodelay");
        }
        let service = TowerToHyperService::new(make(peer));
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_timeout);
            // Upgrades let a client turn its connection into a WebSocket on the same port.
            let connection = builder
                .serve_connection(TokioIo::new(socket), service)
                .with_upgrades();
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                // The guard `wait_for` answers with is dropped before the branch awaits.
                () = async { drop(stopped.wait_for(|stop| *stop).await) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "http.connection.closed");
            }
        });
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, time::Duration};

    use http_body_util::Full;
    use hyper::body::Bytes;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;

    async fn hello_server(config: ServeConfig) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let service = tower::service_fn(|_: http::Request<Incoming>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hi"))))
        });
        tokio::spawn(serve(listener, config, move |_| service, async {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    /// Whether the server ends the connection without serving it a 200.
    async fn closed(socket: &mut TcpStream) -> bool {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut got));
        read.await.is_ok() && !got.starts_with(b"HTTP/1.1 200")
    }

    #[tokio::test]
    async fn test_a_client_over_its_connections_is_closed_and_others_are_served() {
        let (addr, _stop) = hello_server(ServeConfig {
            max_connections_per_ip: 2,
            limit_loopback: true,
            ..ServeConfig::default()
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut socket = TcpStream::connect(addr).await.expect("connect");
            // A whole request makes sure the server admitted it before the next one arrives.
            socket
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0u8; 256];
            let n = socket.read(&mut buf).await.expect("answer");
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            held.push(socket);
        }
        let mut third = TcpStream::connect(addr).await.expect("the kernel accepts");
        assert!(
            closed(&mut third).await,
            "the third connection from one IP is closed"
        );
        drop(held.pop());
        // The freed place is taken again (the server notices the hang-up asynchronously).
        let mut answered = false;
        for _ in 0..100 {
            let mut socket = TcpStream::connect(addr).await.expect("connect");
            let _ = socket.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
            let mut buf = [0u8; 256];
            if let Ok(n) = socket.read(&mut buf).await
                && buf[..n].starts_with(b"HTTP/1.1 200")
            {
                answered = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(answered, "a freed place is given again");
    }

    #[tokio::test]
    async fn test_a_client_that_never_finishes_its_header_is_cut_off() {
        let (addr, _stop) = hello_server(ServeConfig {
            header_timeout: Duration::from_millis(200),
            ..ServeConfig::default()
        })
        .await;
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        socket
            .write_all(b"GET / HTTP/1.1\r\nhost:")
            .await
            .expect("write");
        let began = std::time::Instant::now();
        assert!(closed(&mut socket).await, "cut off");
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}
