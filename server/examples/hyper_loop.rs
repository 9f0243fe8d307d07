//! A bare hyper accept loop that tunes each connection itself with `tune`, for services that
//! run their own loop instead of `axum::serve`.
//!
//!     cargo run -p webui-doctor-server --example hyper_loop -- 127.0.0.1:3001
//!     curl http://127.0.0.1:3001/

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use webui_doctor_server::{KeepaliveConfig, tune, tuning};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let config = KeepaliveConfig::default();
    eprintln!("hyper_loop: listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await?;
        // One call per connection; each option is set on its own and reported.
        let outcomes = tune(&stream, &config);
        if outcomes.iter().any(|o| !o.ok()) {
            eprintln!("hyper_loop: {peer}: {}", tuning::describe(&outcomes));
        }
        tokio::spawn(async move {
            let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello from a tuned connection\n"))))
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                eprintln!("hyper_loop: {peer}: {e}");
            }
        });
    }
}
