//! SSE streams leave hyper once their head is ready.
//!
//! hyper keeps two 8 KiB buffers for every HTTP/1 connection (the read buffer and the head
//! buffer) for as long as it lives, and with them its dispatcher: about 10 KiB of resident memory
//! per connection, the larger part of what 10,000 SSE clients cost (measured with heaptrack on
//! `serve` holding 5,000 streams: 8.2 KiB in each buffer, 2.4 KiB of task). An SSE stream
//! needs none of it after its head: it only writes chunks and watches for the client's close.
//!
//! So when the first request on a plain HTTP/1.1 connection is a `GET` whose response the
//! routes mark with [`Stream`], that response is not returned to hyper: the outermost service
//! writes its head here (the bytes hyper would write: status line, the headers as the routes
//! and middleware made them, `transfer-encoding: chunked` and `date`) and hands head and body
//! to the connection's task through a [`Slot`]. The task takes the socket back from hyper
//! (`Connection::into_parts`: hyper has written nothing on the connection yet; on a later
//! request an earlier response could still sit unflushed in hyper's buffer, so only the first
//! qualifies), drops hyper's connection, and [`run`]s the stream: each body frame as one chunk,
//! the closing chunk when the body ends, and a read that notices the client's FIN or reset at
//! once, as hyper's does. The body is the routes' own, so the client slot, the per-address slot,
//! heartbeats and the end at shutdown all work as before.
//!
//! TLS connections, later requests on a connection, HTTP/1.0, `HEAD` and `Connection: close`
//! requests stay with hyper.

use std::io;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, Version, header};
use bytes::Bytes;
use http_body::Body as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// The mark a route puts on a response that streams until the client goes.
#[derive(Clone, Copy, Debug)]
pub struct Stream;

/// A stream's head, already encoded, and its body.
pub struct Handoff {
    head: Vec<u8>,
    body: Body,
}

/// Where the service hands a stream to its connection's task: one per plain connection,
/// claimed by its first request.
#[derive(Clone)]
pub struct Slot(Arc<Mutex<Option<oneshot::Sender<Handoff>>>>);

impl Slot {
    pub fn new() -> (Slot, oneshot::Receiver<Handoff>) {
        let (tx, rx) = oneshot::channel();
        (Slot(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// The way to the task, for the connection's first request only.
    pub fn claim(&self) -> Option<oneshot::Sender<Handoff>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Whether a request's response may leave hyper, decided before the request goes to the routes
/// (they consume it).
pub fn eligible<B>(request: &Request<B>) -> bool {
    request.method() == Method::GET
        && request.version() == Version::HTTP_11
        && !request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))))
}

/// Hands `response` to the connection's task when it is a marked stream; otherwise gives it
/// back for hyper to send. `None` means the task owns it now.
pub fn offer(tx: oneshot::Sender<Handoff>, response: Response<Body>) -> Option<Response<Body>> {
    if response.extensions().get::<Stream>().is_none() || !chunked_body(response.headers()) {
        return Some(response);
    }
    let (parts, body) = response.into_parts();
    let head = encode_head(parts.status, &parts.headers);
    tx.send(Handoff { head, body }).err().map(|handoff| Response::from_parts(parts, handoff.body))
}

/// True when hyper would frame the body as chunks (no length, no framing of the routes' own).
fn chunked_body(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && !headers.contains_key(header::CONNECTION)
}

fn encode_head(status: axum::http::StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"transfer-encoding: chunked\r\ndate: ");
    head.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// Writes the stream on `io` until its body ends (the closing chunk, then FIN), the client
/// closes or resets, or a write fails (including the keepalive and `TCP_USER_TIMEOUT` expiries
/// the socket carries, as `ETIMEDOUT`). Bytes the client sends meanwhile are read and dropped.
pub async fn run<I>(mut io: I, handoff: Handoff) -> io::Result<()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Handoff { head, mut body } = handoff;
    io.write_all(&head).await?;
    drop(head);
    let mut scratch = [0u8; 64];
    loop {
        let frame = tokio::select! {
            frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)) => frame,
            read = io.read(&mut scratch) => match read? {
                0 => return Ok(()),
                _ => continue,
            },
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    io.write_all(&chunk(&data)).await?;
                }
            }
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => {
                io.write_all(b"0\r\n\r\n").await?;
                return io.shutdown().await;
            }
        }
    }
}

/// One chunk in a single write (the socket has `TCP_NODELAY`: three writes would be three
/// segments).
fn chunk(data: &Bytes) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_what_hyper_writes() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        headers.insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
        let head = String::from_utf8(encode_head(axum::http::StatusCode::OK, &headers)).unwrap();
        assert!(head.starts_with(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\ntransfer-encoding: chunked\r\ndate: "
        ));
        assert!(head.ends_with(" GMT\r\n\r\n"), "{head:?}");
    }

    #[test]
    fn chunks_carry_their_length_in_hex() {
        assert_eq!(chunk(&Bytes::from_static(b": keepalive\n\n")), b"D\r\n: keepalive\n\n\r\n");
        assert_eq!(&chunk(&Bytes::from(vec![b'x'; 300]))[..5], b"12C\r\n");
    }

    #[test]
    fn only_plain_get_over_http11_without_close_is_eligible() {
        let get = |v: Version, conn: Option<&str>| {
            let mut r = Request::get("/api/events").version(v);
            if let Some(c) = conn {
                r = r.header(header::CONNECTION, c);
            }
            eligible(&r.body(()).unwrap())
        };
        assert!(get(Version::HTTP_11, None));
        assert!(get(Version::HTTP_11, Some("keep-alive")));
        assert!(!get(Version::HTTP_11, Some("keep-alive, Close")));
        assert!(!get(Version::HTTP_10, None));
        assert!(!eligible(&Request::head("/api/events").body(()).unwrap()));
    }

    #[test]
    fn unmarked_or_framed_responses_stay_with_hyper() {
        let marked = || {
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(Stream);
            r
        };
        let (tx, mut rx) = oneshot::channel();
        assert!(offer(tx, Response::new(Body::from("x"))).is_some());
        assert!(rx.try_recv().is_err(), "nothing was handed over");
        let (tx, mut rx) = oneshot::channel();
        let mut framed = marked();
        framed.headers_mut().insert(header::CONTENT_LENGTH, "0".parse().unwrap());
        assert!(offer(tx, framed).is_some());
        assert!(rx.try_recv().is_err(), "nothing was handed over");
        let (tx, mut rx) = oneshot::channel();
        assert!(offer(tx, marked()).is_none());
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn only_the_first_request_claims_the_slot() {
        let (slot, _rx) = Slot::new();
        assert!(slot.clone().claim().is_some());
        assert!(slot.claim().is_none(), "a later request on the connection stays with hyper");
    }
}
