//! What the crate promises a service that adopts it, each test written as that service would use
//! it: real sockets on loopback, a real axum server, the options read back from the kernel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use webui_doctor_server::limit::Rejected;
use webui_doctor_server::{ConnectionLimiter, KeepaliveConfig, TunedListener};

/// Polls `done` every 20 ms for at most `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Sends one request on `stream` and reads until the server closes it or 5 s pass.
fn request(mut stream: TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// Every accepted connection carries the options asked for, as the kernel reports them.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn accepted_connections_carry_every_option() {
    let config = KeepaliveConfig::new(Duration::from_secs(2), Duration::from_secs(1), 3);
    let mut listener = TunedListener::bind("127.0.0.1:0", config).await.unwrap();
    let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (stream, _) = axum::serve::Listener::accept(&mut listener).await;

    let sock = socket2::SockRef::from(stream.get_ref());
    assert!(sock.keepalive().unwrap());
    assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(2));
    assert_eq!(sock.tcp_keepalive_interval().unwrap(), Duration::from_secs(1));
    assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
    // The user timeout defaults to the time keepalive takes: 2 + 1 x 3 s.
    assert_eq!(sock.tcp_user_timeout().unwrap(), Some(Duration::from_secs(5)));
    assert!(sock.tcp_nodelay().unwrap());
    assert!(stream.outcomes().iter().all(|o| o.ok()), "{:?}", stream.outcomes());
    assert_eq!(listener.stats().accepted(), 1);
}

/// Past its per-address cap the limiter answers 503 before any request is read; a closed
/// connection frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_answers_503_past_its_cap_and_recovers() {
    let limiter = ConnectionLimiter::new(100, 2);
    let listener =
        TunedListener::bind("127.0.0.1:0", KeepaliveConfig::default()).await.unwrap().with_limiter(limiter.clone());
    let (addr, stats) = (listener.local_addr().unwrap(), listener.stats());
    let app = Router::new().route("/", get(|| async { "hello" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let outcome = tokio::task::spawn_blocking(move || {
        // Two connections held open without a request: the address's share.
        let first = TcpStream::connect(addr).unwrap();
        let _second = TcpStream::connect(addr).unwrap();
        assert!(wait_until(Duration::from_secs(5), || limiter.open() == 2), "open: {}", limiter.open());
        let third = request(TcpStream::connect(addr).unwrap());
        assert!(third.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{third}");
        assert!(third.contains("retry-after: 5"), "{third}");
        assert_eq!(stats.rejected_by(Rejected::PerAddress), 1);
        assert_eq!(stats.rejected_by(Rejected::Total), 0);
        // One of them closes: its place is given back, and the next client is served.
        drop(first);
        assert!(wait_until(Duration::from_secs(5), || limiter.open() == 1), "open: {}", limiter.open());
        let served = request(TcpStream::connect(addr).unwrap());
        assert!(served.starts_with("HTTP/1.1 200 OK\r\n") && served.ends_with("hello"), "{served}");
    })
    .await;
    server.abort();
    outcome.unwrap();
}

/// A client that stops reading a long response is ended by the watchdog once the written bytes
/// have gone unacknowledged for its deadline; the count says so.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_ends_a_reader_that_stopped() {
    use futures_util::stream;

    let listener = TunedListener::bind("127.0.0.1:0", KeepaliveConfig::default())
        .await
        .unwrap()
        .with_watchdog(Duration::from_millis(500));
    let (addr, stats) = (listener.local_addr().unwrap(), listener.stats());
    // An endless response: 64 KiB chunks for as long as the client reads.
    let endless = || async {
        let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        axum::body::Body::from_stream(chunks)
    };
    let app = Router::new().route("/", get(endless));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let outcome = tokio::task::spawn_blocking(move || {
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").unwrap();
        // Reads nothing: the window closes and the server's bytes wait unacknowledged.
        let ended = wait_until(Duration::from_secs(10), || stats.watchdog_ended() == 1);
        assert!(ended, "watchdog_ended: {}", stats.watchdog_ended());
        // The server reset the connection: reading what was queued ends in an error or EOF.
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = vec![0; 1 << 20];
        let closed = loop {
            match client.read(&mut sink) {
                Ok(0) | Err(_) => break true,
                Ok(_) => continue,
            }
        };
        assert!(closed);
    })
    .await;
    server.abort();
    outcome.unwrap();
}
