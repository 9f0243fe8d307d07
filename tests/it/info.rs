//! `-i` (tcp_info) and `-m` (socket memory) against `ss -tanim` on the same real sockets, and the
//! `slow-reader` finding for a client that stopped reading, with what `TCP_USER_TIMEOUT` does to
//! such a stream on this kernel measured rather than assumed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::SockRef;

use crate::util::*;

/// `ss -tanim` fields for the sockets on local port `port`, keyed by `local peer`.
fn ss_info(port: u16) -> Vec<(String, String, std::collections::HashMap<String, String>)> {
    let out = Command::new("ss")
        .args(["-tanim", "state", "established", &format!("( sport = :{port} )")])
        .output()
        .expect("ss is installed (iproute2)");
    assert!(out.status.success(), "ss failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows: Vec<String> = Vec::new();
    for line in text.lines().skip(1) {
        match rows.last_mut() {
            Some(prev) if line.starts_with(char::is_whitespace) => {
                prev.push(' ');
                prev.push_str(line);
            }
            _ => rows.push(line.to_owned()),
        }
    }
    rows.iter()
        .map(|row| {
            // With a `state` filter ss leaves the state column out: Recv-Q Send-Q Local Peer ...
            let mut f = row.split_whitespace();
            let (_rq, _sq) = (f.next().unwrap(), f.next().unwrap());
            let local = f.next().unwrap().to_owned();
            let peer = f.next().unwrap().to_owned();
            let mut fields = std::collections::HashMap::new();
            for word in f {
                if let Some((k, v)) = word.split_once(':') {
                    fields.insert(k.to_owned(), v.to_owned());
                }
                if let Some(mem) = word.strip_prefix("skmem:(").and_then(|m| m.strip_suffix(')')) {
                    for part in mem.split(',') {
                        let split = part.find(|c: char| c.is_ascii_digit()).unwrap();
                        fields.insert(format!("skmem.{}", &part[..split]), part[split..].to_owned());
                    }
                }
            }
            (local, peer, fields)
        })
        .collect()
}

/// A server and two clients: one that reads everything it is sent and then idles, and one that
/// stopped reading with its receive buffer full (the server's send queue stuck behind a closed
/// window).
struct Streams {
    listener: TcpListener,
    reading: (TcpStream, TcpStream),
    stalled: (TcpStream, TcpStream),
    /// Bytes the server queued to the stalled client before its sends would block.
    queued: usize,
}

impl Streams {
    fn start(v6: bool, user_timeout: Option<Duration>) -> Streams {
        let listener = TcpListener::bind(SocketAddr::new(loopback(v6), 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut reader = TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(&[7u8; 5000]).unwrap();
        let mut buf = vec![0u8; 5000];
        reader.read_exact(&mut buf).unwrap();
        reader.write_all(&[9u8; 3000]).unwrap();
        server.read_exact(&mut buf[..3000]).unwrap();

        let client = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client.connect(&addr.into()).unwrap();
        let client: TcpStream = client.into();
        let (slow_server, _) = listener.accept().unwrap();
        if let Some(t) = user_timeout {
            SockRef::from(&slow_server).set_tcp_user_timeout(Some(t)).unwrap();
        }
        SockRef::from(&slow_server).set_send_buffer_size(16 * 1024).unwrap();
        slow_server.set_nonblocking(true).unwrap();
        let mut queued = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match (&slow_server).write(&[1u8; 4096]) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the stalled stream: {e}"),
            }
        }
        Streams { listener, reading: (reader, server), stalled: (client, slow_server), queued }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    fn stalled_peer(&self) -> String {
        self.stalled.0.local_addr().unwrap().to_string()
    }

    fn reading_peer(&self) -> String {
        self.reading.0.local_addr().unwrap().to_string()
    }
}

fn server_socket<'a>(doc: &'a Value, peer: &str) -> &'a Value {
    doc["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["peer"] == peer)
        .unwrap_or_else(|| panic!("no {peer}: {doc:#}"))
}

fn info_matches_ss(v6: bool) {
    let streams = Streams::start(v6, None);
    let port = streams.port().to_string();
    // Let delayed ACKs and the window probe settle: quiet sockets, then both tools read.
    std::thread::sleep(Duration::from_millis(600));
    let ours = json(&["sockets", "-i", "-m", "--port", &port, "--state", "established"]);
    let theirs = ss_info(streams.port());
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    for (local, peer, ss) in &theirs {
        let peer = peer.replace("%lo", "");
        let s = server_socket(&ours, &peer);
        assert_eq!(s["local"].as_str().unwrap(), local.replace("%lo", ""));
        let info = &s["info"];
        let field = |k: &str| ss.get(k).map_or(0, |v| v.parse::<u64>().unwrap());
        // ss leaves out counters that are zero.
        assert_eq!(info["bytes_acked"], field("bytes_acked"), "{peer}: {info} vs {ss:?}");
        assert_eq!(info["bytes_received"], field("bytes_received"), "{peer}");
        assert_eq!(info["unacked"], field("unacked"), "{peer}");
        assert_eq!(info["notsent_bytes"], field("notsent"), "{peer}");
        assert_eq!(info["snd_wnd"], field("snd_wnd"), "{peer}");
        let (rtt, rttvar) = ss["rtt"].split_once('/').unwrap();
        let us = |ms: &str| (ms.parse::<f64>().unwrap() * 1000.0).round() as i64;
        let ours_rtt = info["rtt_us"].as_i64().unwrap();
        assert!((ours_rtt - us(rtt)).abs() <= 200.max(us(rtt) / 2), "{peer}: rtt {ours_rtt} us vs ss {rtt} ms");
        assert!(info["rttvar_us"].as_i64().is_some() && us(rttvar) >= 0);
        assert_eq!(info["rto_ms"].as_u64().unwrap(), ss["rto"].parse::<f64>().unwrap() as u64, "{peer}");
        // ss -m: skmem:(r,rb,t,tb,f,w,o,bl,d).
        let mem = &s["memory"];
        for (ours_key, ss_key) in
            [("rmem_alloc", "r"), ("rcvbuf", "rb"), ("wmem_alloc", "t"), ("sndbuf", "tb"), ("wmem_queued", "w")]
        {
            assert_eq!(mem[ours_key], field(&format!("skmem.{ss_key}")), "{peer}: {ours_key}: {mem} vs {ss:?}");
        }
    }
    // The stalled stream has data queued that was never sent, and a closed window.
    let stalled = &server_socket(&ours, &streams.stalled_peer())["info"];
    assert!(stalled["notsent_bytes"].as_u64().unwrap() > 0, "{stalled}");
    assert_eq!(stalled["snd_wnd"], 0, "{stalled}");
    assert!(streams.queued > 4096);
    let reading = &server_socket(&ours, &streams.reading_peer())["info"];
    assert_eq!(reading["bytes_acked"], 5000, "{reading}");
    assert_eq!(reading["bytes_received"], 3000);

    // The table has the -i columns, with the same numbers.
    let table = stdout(&run(&["sockets", "-i", "--port", &port, "--state", "established"]));
    let header = table.lines().next().unwrap();
    for column in ["RTT", "Retrans", "Unacked", "Not-sent", "Last-ACK"] {
        assert!(header.contains(column), "{header}");
    }
    let row = table.lines().find(|l| l.contains(&streams.stalled_peer())).unwrap();
    assert!(row.contains(&stalled["notsent_bytes"].to_string()), "{row}");
}

#[test]
fn info_and_memory_agree_with_ss_ipv4() {
    info_matches_ss(false);
}

#[test]
fn info_and_memory_agree_with_ss_ipv6() {
    info_matches_ss(true);
}

#[test]
fn procfs_says_which_info_fields_it_cannot_give() {
    let streams = Streams::start(false, None);
    let port = streams.port().to_string();
    let v = json(&["sockets", "-i", "-m", "--source", "procfs", "--port", &port, "--state", "established"]);
    let unavailable: Vec<&str> = v["unavailable"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(unavailable.contains(&"info.rtt_us") && unavailable.contains(&"memory"), "{unavailable:?}");
    assert!(!unavailable.contains(&"info.rto_ms"), "procfs has rto: {unavailable:?}");
    let s = server_socket(&v, &streams.reading_peer());
    assert!(s["info"]["rtt_us"].is_null() && s["memory"]["sndbuf"].is_null(), "{s}");
    // rto in clock ticks: 200 ms minimum on loopback.
    assert!(s["info"]["rto_ms"].as_u64().unwrap() >= 200, "{s}");
    let out = run(&["sockets", "-i", "--source", "procfs", "--port", &port]);
    assert!(stdout(&out).contains("unavailable: the procfs source cannot give info.rtt_us"), "{}", stdout(&out));
}

fn slow_readers(port: &str) -> Vec<Value> {
    let v = json(&["sockets", "--port", port]);
    v["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "slow-reader").cloned().collect()
}

#[test]
fn slow_reader_is_the_client_that_stopped_reading() {
    let streams = Streams::start(false, None);
    let port = streams.port().to_string();
    // The persist (zero-window probe) timer is armed once the first probe is due.
    let mut found = Vec::new();
    assert!(
        wait_until(Duration::from_secs(3), || {
            found = slow_readers(&port);
            !found.is_empty()
        }),
        "no slow-reader finding"
    );
    let f = &found[0];
    assert_eq!(f["evidence"]["sockets"], 1, "the idle reader is not slow: {f:#}");
    assert_eq!(f["evidence"]["peers"][0], streams.stalled_peer());
    assert!(f["evidence"]["queued_bytes"].as_u64().unwrap() > 0);
    assert_eq!(f["cure"], format!("webui-doctor fix --port {port}"));
    assert!(f["message"].as_str().unwrap().starts_with(&format!("1 stream on :{port} has not been read for")), "{f}");

    // Once the client reads again, the window opens and the finding goes.
    let (mut client, _) = (streams.stalled.0.try_clone().unwrap(), ());
    client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut drained = 0;
    while drained < streams.queued {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(_) => break,
        }
    }
    assert_eq!(drained, streams.queued);
    assert!(wait_until(Duration::from_secs(3), || slow_readers(&port).is_empty()), "finding stayed after the read");
}

/// What the `slow-reader` message says about `TCP_USER_TIMEOUT`, measured: with a 2 s user
/// timeout the kernel ends a stream whose window stays closed (while the live peer keeps
/// acknowledging the window probes); without one the stream stays. If a kernel behaves
/// otherwise this test fails, and the message must change with it.
#[test]
fn user_timeout_ends_a_stream_whose_window_stays_closed() {
    let with = Streams::start(false, Some(Duration::from_secs(2)));
    let without = Streams::start(false, None);
    let started = Instant::now();
    let gone = |s: &Streams| {
        let v = json(&["sockets", "--port", &s.port().to_string(), "--state", "established"]);
        v["sockets"].as_array().unwrap().iter().all(|x| x["peer"] != s.stalled_peer())
    };
    assert!(wait_until(Duration::from_secs(8), || gone(&with)), "TCP_USER_TIMEOUT 2 s did not end the stalled stream");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "ended too early ({took:?}): not by the user timeout");
    let err = (&with.stalled.1).write(b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT), "{err}");
    assert!(!gone(&without), "without TCP_USER_TIMEOUT the stalled stream stays");
    eprintln!("TCP_USER_TIMEOUT 2 s ended a zero-window stream after {took:?}");

    // Set on a stream that is already stalled (what `fix` does to a running server), it ends
    // the stream at the next window probe: the persist timer has backed off to a few seconds.
    SockRef::from(&without.stalled.1).set_tcp_user_timeout(Some(Duration::from_secs(1))).unwrap();
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || gone(&without)),
        "a user timeout set after the stall did not end it"
    );
    eprintln!("TCP_USER_TIMEOUT set after the stall ended it after {:?}", started.elapsed());
}
