//! The API on a loopback port: what `mailroom local up` and the integration tests run, so the
//! same [`Api::handle`] that Lambda calls answers real HTTP. HTTP/1.1 only, no TLS: it is meant
//! for 127.0.0.1, never for a public interface.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::request::MAX_BODY_BYTES;
use crate::Api;

/// Serves connections from `listener` until the task is dropped or aborted. A failed accept
/// (a reset connection, running out of descriptors) is logged and waited out, never fatal.
pub async fn serve(api: Arc<Api>, listener: TcpListener) -> io::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(respond(&api, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// Binds `addr` (e.g. `127.0.0.1:0`) and serves on a task: the bound address (with the port
/// chosen) and the task, which stops serving when aborted.
pub async fn spawn(
    api: Arc<Api>,
    addr: impl ToSocketAddrs,
) -> io::Result<(SocketAddr, JoinHandle<io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((bound, tokio::spawn(serve(api, listener))))
}

async fn respond(api: &Api, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // One byte over the limit is read so that Api::handle itself refuses a body just over it;
    // anything larger is cut off here without being buffered.
    let body = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let e = ApiError::bad_request(
                "body",
                format!("the body is over {MAX_BODY_BYTES} bytes or was cut off"),
            );
            return hyper::Response::builder()
                .status(e.status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(e.body().to_string())))
                .expect("a fixed status and headers");
        }
    };
    let reply = api.handle(http::Request::from_parts(parts, body)).await;
    reply.map(|b| Full::new(Bytes::from(b)))
}
