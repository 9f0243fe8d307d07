//! Shared helpers: the command under test with a clean environment, real sockets put into each
//! TCP state on loopback, and `ss` as an independent oracle.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `webui-doctor` with the environment variables it reads cleared, so the host's settings
/// cannot change what a test sees.
pub fn cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_webui-doctor"));
    for var in ENV_READ {
        c.env_remove(var);
    }
    c
}

/// The environment variables webui-doctor reads (`SUDO_UID` turns the `/proc` overrides off).
pub const ENV_READ: [&str; 5] = ["PROC_ROOT", "PROC_NET_TCP", "PROC_NET_TCP6", "NO_COLOR", "SUDO_UID"];

/// Runs `webui-doctor ARGS` as the `nobody` user (through util-linux's `setpriv`), with the
/// same clean environment as `cmd()`.
pub fn run_as_nobody(args: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_webui-doctor")]).args(args);
    for var in ENV_READ {
        c.env_remove(var);
    }
    c.output().expect("setpriv (util-linux)")
}

pub fn run(args: &[&str]) -> Output {
    cmd().args(args).output().expect("run webui-doctor")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited with a code")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs with `--format json` and parses stdout; panics with stderr on failure.
pub fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = run(&all);
    assert_eq!(code(&out), 0, "webui-doctor {all:?} failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// `webui-doctor SUBCOMMAND ARGS --format json` whatever its exit code: the code, the document
/// (parsed strictly: a key written twice in one object is an error, not a silent overwrite) and
/// stderr.
pub fn subcommand_json(subcommand: &str, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec![subcommand];
    all.extend_from_slice(args);
    all.extend(["--format", "json"]);
    let out = run(&all);
    let v = strict_json(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {} {}", stdout(&out), stderr(&out)));
    (code(&out), v, stderr(&out))
}

/// Polls `cond` every 20 ms for up to `limit`; true once it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

pub fn loopback(v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) }
}

/// A connected pair on loopback: `client` dialled, `server` is the accepted socket.
pub struct Pair {
    pub client: TcpStream,
    pub server: TcpStream,
}

/// Real sockets in every state the tests inspect, all around one listening port:
/// LISTEN; ESTABLISHED without keepalive; ESTABLISHED with keepalive on the accepted side;
/// CLOSE-WAIT on the server with the client (still open) in FIN-WAIT-2; TIME-WAIT on a client.
pub struct Fixture {
    /// Held open: the LISTEN socket every other socket connects to.
    pub _listener: TcpListener,
    pub port: u16,
    pub plain: Pair,
    pub keepalive: Pair,
    pub close_wait: Pair,
    /// The server side of the pair whose client is now in TIME-WAIT (closed by us too).
    pub time_wait_client_port: u16,
}

pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

impl Fixture {
    pub fn new(v6: bool) -> Fixture {
        let listener = quiet_listener(v6);
        let port = listener.local_addr().unwrap().port();
        let connect = || {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            Pair { client, server }
        };

        let plain = connect();

        let keepalive = connect();
        let params = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE).with_interval(Duration::from_secs(5));
        socket2::SockRef::from(&keepalive.server).set_tcp_keepalive(&params).unwrap();

        // The client half-closes and keeps its fd: it sits in FIN-WAIT-2 with an inode, and the
        // server, which never closes, sits in CLOSE-WAIT.
        let close_wait = connect();
        close_wait.client.shutdown(Shutdown::Write).unwrap();

        // The client closes first, then the server: the client ends in TIME-WAIT.
        let tw = connect();
        let time_wait_client_port = tw.client.local_addr().unwrap().port();
        drop(tw.client);
        let mut server = tw.server;
        let mut buf = [0u8; 1];
        assert_eq!(server.read(&mut buf).unwrap(), 0, "client FIN seen");
        drop(server);

        let f = Fixture { _listener: listener, port, plain, keepalive, close_wait, time_wait_client_port };
        f.settle();
        f
    }

    /// The (local port, peer port) of every socket the fixture made. Port numbers alone are not
    /// enough on a busy host: another test's TIME-WAIT entry may have used the same ephemeral
    /// port as our listener.
    pub fn tuples(&self) -> Vec<(u16, u16)> {
        let mut t = vec![(self.port, 0)];
        for pair in [&self.plain, &self.keepalive, &self.close_wait] {
            let c = pair.client.local_addr().unwrap().port();
            t.extend([(c, self.port), (self.port, c)]);
        }
        t.push((self.time_wait_client_port, self.port));
        t
    }

    /// True for a socket this fixture made, given its local and peer addresses as text.
    pub fn owns(&self, local: &str, peer: &str) -> bool {
        let port = |a: &str| a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(u16::MAX);
        self.tuples().contains(&(port(local), port(peer)))
    }

    /// Waits until the kernel has moved every socket to its intended state.
    fn settle(&self) {
        let settled = wait_until(Duration::from_secs(5), || {
            let s = ss_sockets(self.port);
            let about = |state: &str| s.iter().filter(|x| x.state == state && self.owns(&x.local, &x.peer)).count();
            about("CLOSE-WAIT") == 1 && about("FIN-WAIT-2") == 1 && about("TIME-WAIT") == 1 && about("ESTAB") == 4
        });
        assert!(settled, "sockets did not reach their states: {:#?}", ss_sockets(self.port));
    }

    /// Writes a little data the peer never reads, so a receive queue is non-zero.
    pub fn queue_bytes(&mut self) {
        self.plain.client.write_all(b"hello").unwrap();
    }
}

/// A loopback listener on a port no other socket uses. A port is free to bind while TIME-WAIT
/// entries of earlier connections that used it as their ephemeral port linger; tests that count
/// "the sockets on port P" would count those too, so such a port is skipped.
pub fn quiet_listener(v6: bool) -> TcpListener {
    for _ in 0..50 {
        let listener = TcpListener::bind(SocketAddr::new(loopback(v6), 0)).expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let filter = format!("( sport = :{port} or dport = :{port} )");
        let out = Command::new("ss").args(["-tanH", &filter]).output().expect("ss");
        if String::from_utf8_lossy(&out.stdout).lines().count() == 1 {
            return listener;
        }
    }
    panic!("no quiet loopback port after 50 tries");
}

pub fn inode_of(fd: &impl AsRawFd) -> u64 {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a live descriptor into a zeroed stat buffer.
    assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, 0);
    st.st_ino
}

/// One line of `ss -tanoe`.
#[derive(Debug, Clone)]
pub struct SsSocket {
    pub state: String,
    pub recv_q: u32,
    pub send_q: u32,
    pub local: String,
    pub peer: String,
    /// (kind as ss names it, expiry in ms, retransmits/probes)
    pub timer: Option<(String, u64, u32)>,
    pub uid: u32,
    pub inode: u64,
    /// `lastsnd:` / `lastrcv:` from `-i` (ss omits zeros).
    pub last_send_ms: u64,
    pub last_recv_ms: u64,
}

/// Runs the system's `ss -tanoei` on the sockets with `port` at either end, and parses each
/// socket (with its `-i` continuation line). The filter keeps ss fast on a busy host.
pub fn ss_sockets(port: u16) -> Vec<SsSocket> {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = Command::new("ss").arg("-tanoei").arg(filter).output().expect("ss is installed (iproute2)");
    assert!(out.status.success(), "ss failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut joined: Vec<String> = Vec::new();
    for line in text.lines().skip(1) {
        match joined.last_mut() {
            Some(prev) if line.starts_with(char::is_whitespace) => {
                prev.push(' ');
                prev.push_str(line);
            }
            _ => joined.push(line.to_owned()),
        }
    }
    joined.iter().filter_map(|l| parse_ss_line(l)).collect()
}

fn parse_ss_line(line: &str) -> Option<SsSocket> {
    let mut f = line.split_whitespace();
    let state = f.next()?.to_owned();
    let recv_q = f.next()?.parse().ok()?;
    let send_q = f.next()?.parse().ok()?;
    // ss writes a listener's peer port as `*`; webui-doctor writes 0.
    let local = f.next()?.replace(":*", ":0").replace("%lo", "");
    let peer = f.next()?.replace("*:*", "0.0.0.0:0").replace(":*", ":0");
    let mut s = SsSocket {
        state,
        recv_q,
        send_q,
        local,
        peer,
        timer: None,
        uid: 0,
        inode: 0,
        last_send_ms: 0,
        last_recv_ms: 0,
    };
    for field in f {
        if let Some(t) = field.strip_prefix("timer:(").and_then(|t| t.strip_suffix(')')) {
            let mut parts = t.split(',');
            let kind = parts.next()?.to_owned();
            let ms = ss_timer_ms(parts.next()?);
            let n = parts.next()?.parse().ok()?;
            s.timer = Some((kind, ms, n));
        } else if let Some(v) = field.strip_prefix("uid:") {
            s.uid = v.parse().ok()?;
        } else if let Some(v) = field.strip_prefix("ino:") {
            s.inode = v.parse().ok()?;
        } else if let Some(v) = field.strip_prefix("lastsnd:") {
            s.last_send_ms = v.parse().ok()?;
        } else if let Some(v) = field.strip_prefix("lastrcv:") {
            s.last_recv_ms = v.parse().ok()?;
        }
    }
    Some(s)
}

/// Reads ss's `print_ms_timer` text back into milliseconds: `1min5sec`, `59sec`, `412ms`, and
/// `7.412ms`, which iproute2 before 6.11 prints for 7.412 s.
pub fn ss_timer_ms(text: &str) -> u64 {
    let mut total = 0u64;
    let mut rest = text;
    if let Some((min, r)) = rest.split_once("min") {
        total += min.parse::<u64>().unwrap() * 60_000;
        rest = r;
    }
    if let Some(sec) = rest.strip_suffix("sec") {
        total += sec.parse::<u64>().unwrap() * 1000;
    } else if let Some(ms) = rest.strip_suffix("ms") {
        match ms.split_once('.') {
            Some((s, m)) => total += s.parse::<u64>().unwrap() * 1000 + m.parse::<u64>().unwrap(),
            None => total += ms.parse::<u64>().unwrap(),
        }
    }
    total
}

/// Fails the test, or skips it with a printed reason outside CI, when `ok` is false.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must provide {what}");
    eprintln!("skipped: {what} is not available here");
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn have_promtool() -> bool {
    Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Fails the test unless Prometheus's own `promtool check metrics` accepts `text`.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool: {}{}", stdout(&out), stderr(&out));
}

/// The keepalive options of socket `inode` held by `pid`, read the way `-O` reads them.
pub fn sockopts_of(pid: u32, inode: u64) -> webui_doctor::model::SockOpts {
    let want = format!("socket:[{inode}]");
    let fd = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's fd table")
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
        .and_then(|e| e.file_name().to_str()?.parse().ok())
        .unwrap_or_else(|| panic!("process {pid} holds no socket {inode}"));
    use webui_doctor::os;
    let copy = os::pidfd_getfd(&os::pidfd_open(pid).expect("pidfd"), fd).expect("pidfd_getfd");
    assert_eq!(os::socket_identity(&copy).unwrap().inode, inode, "fd {fd} of {pid} changed");
    os::get_sockopts(&copy).expect("socket options")
}

/// Parses JSON like `serde_json::from_slice`, but fails on an object that has the same key twice
/// (serde_json keeps the last one silently).
pub fn strict_json(bytes: &[u8]) -> Result<Value, String> {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Strict(Value);

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
            d.deserialize_any(StrictVisitor)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Strict;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
            Ok(Strict(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
            Ok(Strict(v.into()))
        }
        fn visit_unit<E>(self) -> Result<Strict, E> {
            Ok(Strict(Value::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
            let mut out = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Strict(Value::Array(out)))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let Strict(v) = map.next_value()?;
                if out.insert(key.clone(), v).is_some() {
                    return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
                }
            }
            Ok(Strict(Value::Object(out)))
        }
    }

    let mut d = serde_json::Deserializer::from_slice(bytes);
    let Strict(v) = Strict::deserialize(&mut d).map_err(|e| e.to_string())?;
    d.end().map_err(|e| e.to_string())?;
    Ok(v)
}

#[test]
fn strict_json_rejects_duplicate_keys() {
    assert!(strict_json(br#"{"a": 1, "b": {"c": [1, {"d": null}]}}"#).is_ok());
    assert!(strict_json(br#"{"ok": true, "x": 1, "ok": false}"#).unwrap_err().contains("duplicate key \"ok\""));
    assert!(strict_json(br#"[{"a": 1}, {"b": {"a": 1, "a": 2}}]"#).is_err());
}

/// The cgroup-v1 `net_cls,net_prio` hierarchy: the existing mount, or one this helper makes. Its
/// groups (each with a class id) are removed on drop, their processes moved back to the root
/// first; a mount of its own is unmounted only once the kernel has let go of every group (the
/// `net_cls` count in `/proc/cgroups` is back where it was: an unmount right after `rmdir` can
/// leave the hierarchy bound, and the next `mount -o net_cls,net_prio` then fails).
pub struct NetCls {
    root: std::path::PathBuf,
    mounted: Option<tempfile::TempDir>,
    groups: Vec<std::path::PathBuf>,
    count_before: Option<u64>,
}

impl NetCls {
    pub fn new() -> Option<NetCls> {
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        let existing = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup") && f.get(3)?.split(',').any(|o| o == "net_cls")).then(|| f[1].to_owned())
        });
        let count_before = net_cls_groups();
        let (root, mounted) = match existing {
            Some(path) => (path.into(), None),
            None => {
                let dir = tempfile::tempdir().ok()?;
                let ok = Command::new("mount")
                    .args(["-t", "cgroup", "-o", "net_cls,net_prio", "none"])
                    .arg(dir.path())
                    .status()
                    .ok()?
                    .success();
                if !ok {
                    return None;
                }
                (dir.path().to_owned(), Some(dir))
            }
        };
        Some(NetCls { root, mounted, groups: Vec::new(), count_before })
    }

    /// A new group `name` (made unique to this test process) with class id `classid`.
    pub fn group(&mut self, name: &str, classid: &str) -> std::path::PathBuf {
        let group = self.root.join(format!("webui_doctor_test_{}_{name}", std::process::id()));
        std::fs::create_dir_all(&group).unwrap();
        std::fs::write(group.join("net_cls.classid"), classid).unwrap();
        self.groups.push(group.clone());
        group
    }

    pub fn enter(group: &std::path::Path, pid: u32) {
        std::fs::write(group.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

/// How many net_cls groups the kernel holds (`/proc/cgroups`, offline ones included).
fn net_cls_groups() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cgroups").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&"net_cls")).then(|| f.get(2)?.parse().ok())?
    })
}

impl Drop for NetCls {
    fn drop(&mut self) {
        for group in &self.groups {
            let procs = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
            wait_until(Duration::from_secs(5), || std::fs::remove_dir(group).is_ok() || !group.exists());
        }
        if let Some(dir) = &self.mounted {
            let before = self.count_before.unwrap_or(1);
            wait_until(Duration::from_secs(10), || net_cls_groups().is_none_or(|n| n <= before));
            let _ = Command::new("umount").arg(dir.path()).status();
        }
    }
}

/// A copy of the binary in a directory of its own (mode 755), with `mode` (`0o4755`: set-uid
/// root). Returned once it can be run: while another test thread forks, the child briefly holds
/// the copy's write descriptor, and an exec then fails with `ETXTBSY`.
pub fn binary_copy(mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("webui-doctor");
    std::fs::copy(env!("CARGO_BIN_EXE_webui-doctor"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(mode)).unwrap();
    let runs = wait_until(Duration::from_secs(5), || {
        Command::new(&copy).arg("--version").output().map_or_else(|e| e.raw_os_error() != Some(libc::ETXTBSY), |_| true)
    });
    assert!(runs, "{} stayed busy", copy.display());
    (dir, copy)
}

/// `token` in a file `token` of `dir`, mode 600 (as `serve --token-file` wants it); its path.
pub fn token_file(dir: &tempfile::TempDir, token: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    file.to_str().unwrap().to_owned()
}

/// Runs a command that is expected to refuse and exit (a `serve` that must not start): its
/// output, or a failure after `limit` with the command killed, rather than a test that hangs
/// on a server that started after all.
pub fn output_within(mut c: Command, limit: Duration) -> Output {
    let mut child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    if !wait_until(limit, || child.try_wait().is_ok_and(|s| s.is_some())) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("{c:?} still ran after {limit:?}: {}", stderr(&out));
    }
    child.wait_with_output().unwrap()
}

/// Whether `program` is installed (it runs with `--version`).
pub fn have(program: &str) -> bool {
    use std::process::Stdio;
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A named network namespace, deleted on drop even when the test fails.
pub struct Netns(pub String);

impl Netns {
    pub fn create(tag: &str) -> Netns {
        let name = format!("wd-test-{}-{tag}", std::process::id());
        let ok = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        ok(&["netns", "add", &name]);
        let ns = Netns(name);
        ok(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `f` on a thread that has entered the namespace; sockets it creates live there.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only, with a descriptor kept open for the call.
            assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
