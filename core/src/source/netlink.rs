//! The default source: a `NETLINK_SOCK_DIAG` dump (`inet_diag_req_v2`) per address family, with
//! the state filter in the request's state mask and `INET_DIAG_INFO` (tcp_info) for idle times.
//!
//! The request and the attribute walk use netlink-packet-sock-diag; the timer fields of the
//! `inet_diag_msg` header are read from the reply bytes directly, because the crate's `Timer`
//! enum drops the keepalive probe count, the TIME-WAIT expiry and timer code 5.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage,
};
use netlink_packet_core::{NlasIterator, Parseable};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY};
use netlink_packet_sock_diag::constants::{INET_DIAG_INFO, INET_DIAG_SKMEMINFO};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags};
use netlink_sys::{Socket as NlSocket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{Details, Endpoint, Extras, Family, Socket, TcpState, Timer, TimerKind};
use crate::source::tcpinfo;

/// Receive buffer for one datagram of the dump. The kernel sizes its dump chunks after the
/// reader's buffer; 4 KiB chunks made dumps about 4x slower than 32 KiB ones.
const RECV_BUFFER: usize = 64 * 1024;

/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;

/// `INET_DIAG_CGROUP_ID` (include/uapi/linux/inet_diag.h; the crate has no constant): the cgroup
/// v2 id of the socket, sent unasked for every full socket.
const INET_DIAG_CGROUP_ID: u16 = 21;

/// Dumps both families, handing each socket to `visit` with its family's accumulator (one made
/// by `make` for each) as the datagrams arrive: at most one datagram's sockets are held at a
/// time. A thread started after `--netns` entered a namespace is in that namespace too. Returns
/// IPv4's accumulator and IPv6's.
///
/// The kernel walks its whole established table for every dump, whatever the family. Most
/// reads send most of what it walks, and filling the replies (tcp_info above all) is their
/// cost: each family is dumped on its own socket and thread, so both cores fill. A read with a
/// port filter sends almost nothing, so the walk is all its cost: it walks once, with the older
/// `inet_diag_req` request that dumps both families together (see [`encode_walk_request`];
/// measured at 58,000 sockets: 5.2-5.7 ms a read, where the two dumps on two threads took
/// 7.1-9.3 ms and twice the CPU).
pub fn scan<T, M, V>(filter: &Filter, extras: Extras, make: &M, visit: &V) -> Result<(T, T)>
where
    T: Send,
    M: Fn() -> T + Sync,
    V: Fn(&mut T, Socket) + Sync,
{
    if filter.states.is_empty() {
        return Ok((make(), make()));
    }
    if filter.wants_family(Family::Inet)
        && filter.wants_family(Family::Inet6)
        && let Some(request) = encode_walk_request(filter, extras)
    {
        let (mut v4, mut v6, mut seen) = (make(), make(), false);
        let walked = dump(&request, filter, extras, &mut |s| {
            seen = true;
            match s.family {
                Family::Inet => visit(&mut v4, s),
                Family::Inet6 => visit(&mut v6, s),
            }
        });
        match walked {
            Ok(()) => return Ok((v4, v6)),
            // A kernel without the older request refuses it before sending anything: dump
            // each family instead.
            Err(Error::NetlinkKernel(e))
                if !seen && matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOENT)) => {}
            Err(e) => return Err(e),
        }
    }
    let family = |family| -> Result<T> {
        let mut acc = make();
        if filter.wants_family(family) {
            match dump(&encode_request(family, filter, extras), filter, extras, &mut |s| visit(&mut acc, s)) {
                // A kernel without IPv6 answers the AF_INET6 dump with ENOENT: no IPv6 sockets.
                Err(Error::NetlinkKernel(e)) if family == Family::Inet6 && e.raw_os_error() == Some(libc::ENOENT) => {}
                other => other?,
            }
        }
        Ok(acc)
    };
    let (v4, v6) = std::thread::scope(|scope| {
        let v6 = scope.spawn(|| family(Family::Inet6));
        (family(Family::Inet), v6.join())
    });
    Ok((v4?, v6.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?))
}

/// Sends one dump request and hands each socket of the reply to `sink`.
fn dump(request: &[u8], filter: &Filter, extras: Extras, sink: &mut dyn FnMut(Socket)) -> Result<()> {
    let mut socket = NlSocket::new(NETLINK_SOCK_DIAG).map_err(Error::NetlinkRefused)?;
    socket.bind_auto().map_err(Error::NetlinkRefused)?;
    socket.connect(&NlAddr::new(0, 0)).map_err(Error::NetlinkRefused)?;
    let mut buf = vec![0u8; RECV_BUFFER];
    // One datagram's sockets, handed on before the next is read.
    let mut batch = Vec::new();
    socket.send(request, 0).map_err(Error::NetlinkRefused)?;
    loop {
        // MSG_TRUNC makes recv return the datagram's real length, so a reply that did not fit
        // is detected instead of being decoded from a cut-off buffer.
        let n = loop {
            match socket.recv(&mut &mut buf[..], libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(Error::NetlinkIo)?,
            }
        };
        if n > buf.len() {
            return Err(Error::NetlinkDecode(format!(
                "a {n}-byte datagram did not fit the {}-byte receive buffer",
                buf.len()
            )));
        }
        let decoded = decode_batch(&buf[..n], filter, extras, &mut batch);
        batch.drain(..).for_each(&mut *sink);
        match decoded {
            Ok(Batch::More) => {}
            Ok(Batch::Done) => return Ok(()),
            // A security module or seccomp policy that denies the dump is a refusal too.
            Err(Error::NetlinkKernel(e)) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                return Err(Error::NetlinkRefused(e));
            }
            Err(e) => return Err(e),
        }
    }
}

/// An `inet_diag_req_v2` for TCP in a netlink message of `message_type` with `flags`, encoded.
fn inet_request(
    message_type: u16,
    flags: u16,
    extensions: ExtensionFlags,
    states: u32,
    socket_id: SocketId,
) -> Vec<u8> {
    let family = if socket_id.source_address.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let request = InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions,
        states: StateFlags::from_bits_truncate(states),
        socket_id,
    };
    let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
    packet.finalize();
    packet.header.message_type = message_type;
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// The dump request: `NLM_F_REQUEST | NLM_F_DUMP`, all states in the filter, tcp_info wanted
/// (and the memory attribute with `-m`).
pub fn encode_request(family: Family, filter: &Filter, extras: Extras) -> Vec<u8> {
    let socket_id = match family {
        Family::Inet => SocketId::new_v4(),
        Family::Inet6 => SocketId::new_v6(),
    };
    let flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut buf = inet_request(SOCK_DIAG_BY_FAMILY, flags, extensions(extras), filter.states.mask(), socket_id);
    // The crate has no INET_DIAG_REQ_BYTECODE: append the attribute and fix the message length.
    if let Some(code) = bytecode(filter) {
        append_bytecode(&mut buf, &code);
    }
    buf
}

/// The attributes a dump asks for: tcp_info (its idle times are in every listing) and the
/// memory attribute with `-m`.
fn extensions(extras: Extras) -> ExtensionFlags {
    // tcp_info costs the kernel about a fifth of the dump (measured at 90k sockets: 68 ms
    // without, 85 ms with); a summary that needs no idle times does not ask for it.
    let mut wanted = if extras.no_tcp_info && !extras.info { ExtensionFlags::empty() } else { ExtensionFlags::INFO };
    if extras.memory {
        wanted |= ExtensionFlags::SKMEMINFO;
    }
    wanted
}

/// Appends an `INET_DIAG_REQ_BYTECODE` attribute holding `code` and fixes the message length.
fn append_bytecode(buf: &mut Vec<u8>, code: &[u8]) {
    buf.extend_from_slice(&((4 + code.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    buf.extend_from_slice(code);
    buf.resize(buf.len().next_multiple_of(4), 0);
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_ne_bytes());
}

/// `TCPDIAG_GETSOCK` (include/uapi/linux/inet_diag.h): the request of the interface before
/// `SOCK_DIAG_BY_FAMILY`. The kernel answers it with the sockets of both families from one walk
/// of its tables (`inet_diag_dump_compat` sets the family to `AF_UNSPEC`), in messages of the
/// same type and the same `inet_diag_msg` layout.
const TCPDIAG_GETSOCK: u16 = 18;

/// A dump of both families in one walk (an `inet_diag_req`: family, address lengths, the
/// extensions, the socket id, the state mask and the unused table mask), for a read whose port
/// filter the kernel applies. `None` without one: then the replies are the cost, and each
/// family is dumped on its own thread.
pub fn encode_walk_request(filter: &Filter, extras: Extras) -> Option<Vec<u8>> {
    let code = bytecode(filter)?;
    let mut buf = Vec::with_capacity(16 + 60 + 4 + code.len());
    buf.extend_from_slice(&[0; 4]); // length, set by append_bytecode
    buf.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&[0; 8]); // sequence number and port id
    buf.extend_from_slice(&[AF_INET, 0, 0, extensions(extras).bits()]);
    buf.extend_from_slice(&[0; 48]); // struct inet_diag_sockid: any
    buf.extend_from_slice(&filter.states.mask().to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    append_bytecode(&mut buf, &code);
    Some(buf)
}

/// `SOCK_DESTROY` (include/uapi/linux/sock_diag.h): what `ss -K` sends.
const SOCK_DESTROY: u16 = 21;

/// Ends one socket in the kernel with `SOCK_DESTROY`, named by its 4-tuple and its cookie (so a
/// later connection that reuses the 4-tuple is never hit). Its owner's next call on the socket
/// fails with `ECONNABORTED`. Needs `CAP_NET_ADMIN`; a kernel without `CONFIG_INET_DIAG_DESTROY`
/// answers `EOPNOTSUPP`, and one whose socket is already gone `ENOENT`.
pub fn destroy(socket: &Socket) -> io::Result<()> {
    let socket_id = SocketId {
        source_port: socket.local.port(),
        destination_port: socket.peer.port(),
        source_address: socket.local.ip(),
        destination_address: socket.peer.ip(),
        interface_id: 0,
        cookie: socket.cookie.to_ne_bytes(),
    };
    let buf = inet_request(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, ExtensionFlags::empty(), u32::MAX, socket_id);

    let mut nl = NlSocket::new(NETLINK_SOCK_DIAG)?;
    nl.bind_auto()?;
    nl.connect(&NlAddr::new(0, 0))?;
    nl.send(&buf, 0)?;
    let mut reply = vec![0u8; 4096];
    let n = loop {
        match nl.recv(&mut &mut reply[..], 0) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    let msg = NetlinkBuffer::new_checked(&reply[..n.min(reply.len())]).map_err(|e| io::Error::other(e.to_string()))?;
    if msg.message_type() != NLMSG_ERROR {
        return Err(io::Error::other(format!("unexpected reply type {} to SOCK_DESTROY", msg.message_type())));
    }
    match msg.payload().get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])) {
        Some(0) => Ok(()),
        Some(code @ -4095..=-1) => Err(io::Error::from_raw_os_error(-code)),
        _ => Err(io::Error::other("malformed reply to SOCK_DESTROY")),
    }
}

/// sock_diag's multicast groups of TCP socket ends (include/uapi/linux/sock_diag.h): what
/// `ss -E` reads. Each notification is an `inet_diag_msg` with the socket's final `tcp_info`.
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;

/// A subscription to the kernel's notifications of TCP sockets that end, in this thread's
/// network namespace.
pub struct DestroyFeed {
    socket: NlSocket,
    buf: Vec<u8>,
}

/// What one wait on a [`DestroyFeed`] gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Notifications arrived (appended to the caller's list; those the filter excludes are not).
    Ended,
    /// The socket's receive buffer overran: the kernel dropped notifications (`ENOBUFS`); how
    /// many, it does not say.
    Overrun,
    /// Nothing arrived within the receive timeout.
    Idle,
    /// A message from a process, not the kernel (sender port id not 0): ignored. Anyone may
    /// unicast to this socket; only the kernel announces ends.
    Foreign,
    /// A message from the kernel that could not be decoded: skipped, with why.
    Malformed(String),
}

impl DestroyFeed {
    /// Subscribes to the families `filter` wants, with a receive buffer of `buffer` bytes (forced
    /// past `net.core.rmem_max` with `CAP_NET_ADMIN`, else capped by it) and waits of at most
    /// `wait`. Linux 6.18 lets any user subscribe; a kernel that refuses gets a clear error.
    pub fn open(filter: &Filter, buffer: usize, wait: std::time::Duration) -> Result<DestroyFeed> {
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG).map_err(Error::NetlinkRefused)?;
        socket.bind_auto().map_err(Error::NetlinkRefused)?;
        crate::os::set_recv_buffer(&socket, buffer).map_err(Error::NetlinkIo)?;
        crate::os::set_recv_timeout(&socket, wait).map_err(Error::NetlinkIo)?;
        for (wanted, group) in [(filter.inet, SKNLGRP_INET_TCP_DESTROY), (filter.inet6, SKNLGRP_INET6_TCP_DESTROY)] {
            if wanted {
                socket.add_membership(group).map_err(Error::EventsRefused)?;
            }
        }
        Ok(DestroyFeed { socket, buf: vec![0u8; RECV_BUFFER] })
    }

    /// Waits for notifications and appends the ended sockets `filter` selects to `out`, each
    /// with its final unanswered-probe count.
    pub fn recv(&mut self, filter: &Filter, out: &mut Vec<(Socket, Option<u8>)>) -> Result<Received> {
        let (n, sender) = match self.socket.recv_from(&mut &mut self.buf[..], libc::MSG_TRUNC) {
            Ok((n, from)) => (n, from.port_number()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Received::Overrun),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return Ok(Received::Idle);
            }
            Err(e) => return Err(Error::NetlinkIo(e)),
        };
        Ok(datagram(&self.buf[..n.min(self.buf.len())], n, sender, filter, out))
    }
}

/// What one received datagram of `len` bytes (of which `buf` was kept), from port id `sender`,
/// gives: the kernel's notifications decoded into `out`, or a reason to skip it whole. Nothing
/// here ends the feed: one bad message costs that message only.
pub fn datagram(buf: &[u8], len: usize, sender: u32, filter: &Filter, out: &mut Vec<(Socket, Option<u8>)>) -> Received {
    if sender != 0 {
        return Received::Foreign;
    }
    if len > buf.len() {
        return Received::Malformed(format!("a {len}-byte notification did not fit the {}-byte buffer", buf.len()));
    }
    let mut decoded = Vec::new();
    match decode_ended(buf, filter, &mut decoded) {
        Ok(()) => {
            out.append(&mut decoded);
            Received::Ended
        }
        Err(e) => Received::Malformed(e.to_string()),
    }
}

/// Decodes one datagram of destroy notifications.
pub fn decode_ended(mut buf: &[u8], filter: &Filter, out: &mut Vec<(Socket, Option<u8>)>) -> Result<()> {
    let extras = Extras { info: true, ..Extras::default() };
    while !buf.is_empty() {
        let msg = NetlinkBuffer::new_checked(buf).map_err(|e| Error::NetlinkDecode(format!("{e}")))?;
        if msg.message_type() == SOCK_DIAG_BY_FAMILY {
            let payload = msg.payload();
            if let Some(socket) = decode_socket(payload, filter, extras)? {
                // decode_socket has checked every attribute's length already.
                let probes = NlasIterator::new(&payload[INET_DIAG_MSG_LEN..])
                    .flatten()
                    .find(|nla| nla.kind() == INET_DIAG_INFO)
                    .and_then(|nla| tcpinfo::probes(nla.value()));
                out.push((socket, probes));
            }
        }
        let advance = (msg.length() as usize).next_multiple_of(4).min(buf.len());
        buf = &buf[advance..];
    }
    Ok(())
}

/// `inet_diag_req_v2` attribute carrying a filter program for the kernel.
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// `inet_diag_bc_op` codes (include/uapi/linux/inet_diag.h).
const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
/// Bytes of one port range in the program: `GE lo`, `LE hi` (each an op plus a port op) and a
/// `JMP` to the end of its clause.
const RANGE_LEN: usize = 20;

/// Compiles the port filters into `inet_diag` bytecode, so the kernel skips other sockets
/// instead of sending them all (as `ss` does with its filter expressions). The program is a
/// conjunction of clauses — `--port` (any of the listed local ports), `--sport`, `--dport` —
/// each a disjunction of port ranges. Each op jumps `yes` bytes when its test holds and `no`
/// bytes when it fails; running off the end exactly accepts, jumping 4 bytes past it rejects.
/// `None` when there is no port filter (or too many ports for one attribute: then the filter
/// is applied here, after the dump).
pub fn bytecode(filter: &Filter) -> Option<Vec<u8>> {
    let mut clauses: Vec<(bool, Vec<(u16, u16)>)> = Vec::new();
    if !filter.ports.is_empty() {
        clauses.push((true, filter.ports.iter().map(|&p| (p, p)).collect()));
    }
    if let Some(r) = filter.sport {
        clauses.push((true, vec![(r.low, r.high)]));
    }
    if let Some(r) = filter.dport {
        clauses.push((false, vec![(r.low, r.high)]));
    }
    let total: usize = clauses.iter().map(|(_, r)| r.len() * RANGE_LEN).sum();
    if clauses.is_empty() || total > 60_000 {
        return None;
    }
    let reject = total + 4;
    let mut out = Vec::with_capacity(total);
    let mut op = |code: u8, yes: usize, no: usize| {
        out.push(code);
        out.push(yes as u8);
        out.extend_from_slice(&(no as u16).to_ne_bytes());
    };
    let mut pos = 0;
    for (source, ranges) in &clauses {
        let (ge, le) = if *source { (BC_S_GE, BC_S_LE) } else { (BC_D_GE, BC_D_LE) };
        let clause_end = pos + ranges.len() * RANGE_LEN;
        for (i, &(low, high)) in ranges.iter().enumerate() {
            let next = if i + 1 < ranges.len() { pos + RANGE_LEN } else { reject };
            op(ge, 8, next - pos);
            op(0, 0, usize::from(low));
            op(le, 8, next - (pos + 8));
            op(0, 0, usize::from(high));
            op(BC_JMP, 4, clause_end - (pos + 16));
            pos += RANGE_LEN;
        }
    }
    Some(out)
}

/// Whether a datagram ended the dump.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// More datagrams follow.
    More,
    /// The dump is complete.
    Done,
}

/// Decodes one datagram of a dump, appending matching sockets to `out`. Every length is checked
/// against the bytes actually received; a short or inconsistent message is an error, not a guess.
pub fn decode_batch(mut buf: &[u8], filter: &Filter, extras: Extras, out: &mut Vec<Socket>) -> Result<Batch> {
    while !buf.is_empty() {
        let msg = NetlinkBuffer::new_checked(buf).map_err(|e| Error::NetlinkDecode(format!("{e}")))?;
        let len = msg.length() as usize;
        match msg.message_type() {
            NLMSG_DONE => return Ok(Batch::Done),
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                let payload = msg.payload();
                let code = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| Error::NetlinkDecode("truncated error message".into()))?;
                // The kernel sends a negative errno (0 is an acknowledgement); anything else, such
                // as i32::MIN, which has no positive counterpart, is a malformed reply.
                match code {
                    0 => {}
                    -4095..=-1 => return Err(Error::NetlinkKernel(io::Error::from_raw_os_error(-code))),
                    _ => return Err(Error::NetlinkDecode(format!("invalid error code {code} in an error message"))),
                }
            }
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                if let Some(socket) = decode_socket(msg.payload(), filter, extras)? {
                    out.push(socket);
                }
            }
            other => return Err(Error::NetlinkDecode(format!("unexpected message type {other}"))),
        }
        // Messages are 4-byte aligned; the last one in a datagram may omit its padding.
        let advance = len.next_multiple_of(4).min(buf.len());
        buf = &buf[advance..];
    }
    Ok(Batch::More)
}

/// One `inet_diag_msg` and its attributes.
pub fn decode_socket(payload: &[u8], filter: &Filter, extras: Extras) -> Result<Option<Socket>> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(Error::NetlinkDecode(format!(
            "inet_diag_msg of {} bytes, expected at least {INET_DIAG_MSG_LEN}",
            payload.len()
        )));
    }
    let state = TcpState::from_code(payload[1])
        .ok_or_else(|| Error::NetlinkDecode(format!("unknown TCP state {}", payload[1])))?;
    let family = match payload[0] {
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        other => return Err(Error::NetlinkDecode(format!("unknown address family {other}"))),
    };
    // The kernel already applied the state mask; this check keeps a reply that ignored it honest.
    if !filter.states.contains(state) || !filter.wants_family(family) {
        return Ok(None);
    }
    let header =
        InetResponseHeader::parse(&payload[..INET_DIAG_MSG_LEN]).map_err(|e| Error::NetlinkDecode(format!("{e}")))?;
    let id = &header.socket_id;
    if !filter.matches_ports(id.source_port, id.destination_port) {
        return Ok(None);
    }

    let timer_code = payload[2];
    let retrans = payload[3];
    let expires = u32::from_ne_bytes([payload[52], payload[53], payload[54], payload[55]]);
    let timer = match TimerKind::from_code(timer_code) {
        Some(kind) => Some(Timer { kind, expires_ms: u64::from(expires), probes: u32::from(retrans) }),
        None if timer_code == 0 => None,
        // A timer we cannot name would be shown as "no timer": refuse rather than mislead.
        None => return Err(Error::NetlinkDecode(format!("unknown timer code {timer_code}"))),
    };

    // The attributes, walked in place (the crate's `InetResponse::parse` copies each one into
    // its own allocation). Every length is still checked by `NlasIterator`.
    let (mut idle, mut details) = (None, Details::default());
    for nla in NlasIterator::new(&payload[INET_DIAG_MSG_LEN..]) {
        let nla = nla.map_err(|e| Error::NetlinkDecode(format!("{e}")))?;
        let value = nla.value();
        match nla.kind() {
            INET_DIAG_INFO => {
                // tcp_info's last_data_* are meaningless on a listening socket (it never sends data).
                if state != TcpState::Listening {
                    idle = tcpinfo::idle(value);
                }
                // A listener has no connection: its rtt, windows and ACK times are all zero.
                if extras.info && state != TcpState::Listening {
                    details.info = Some(Box::new(tcpinfo::decode(value)));
                }
            }
            INET_DIAG_SKMEMINFO if extras.memory => details.memory = Some(Box::new(tcpinfo::memory(value))),
            INET_DIAG_CGROUP_ID => {
                details.cgroup_id = value.get(..8).map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])));
            }
            _ => {}
        }
    }
    // Asked for and not sent (minisockets have no tcp_info): every field unknown, not zero.
    if extras.info && details.info.is_none() {
        details.info = Some(Box::default());
    }
    if extras.memory && details.memory.is_none() {
        details.memory = Some(Box::default());
    }

    Ok(Some(Socket {
        family,
        state,
        local: Endpoint(std::net::SocketAddr::new(id.source_address, id.source_port)),
        peer: Endpoint(std::net::SocketAddr::new(id.destination_address, id.destination_port)),
        recv_q: header.recv_queue,
        send_q: header.send_queue,
        timer,
        uid: header.uid,
        inode: u64::from(header.inode),
        process: None,
        idle,
        sockopts: None,
        queued: false,
        cookie: u64::from_ne_bytes(id.cookie),
        details,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One datagram at a time: a sender other than the kernel is ignored, a kernel message that
    /// does not decode is skipped with its reason, and neither is an error that ends the feed.
    #[test]
    fn each_datagram_stands_alone() {
        let filter = Filter::default();
        let mut out = Vec::new();
        let truncated = [0x40u8, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 7];
        assert_eq!(datagram(&truncated, truncated.len(), 4242, &filter, &mut out), Received::Foreign);
        match datagram(&truncated, truncated.len(), 0, &filter, &mut out) {
            Received::Malformed(why) => assert!(!why.is_empty()),
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(matches!(datagram(&truncated, 1 << 20, 0, &filter, &mut out), Received::Malformed(_)));
        assert!(out.is_empty());
        assert_eq!(datagram(&[], 0, 0, &filter, &mut out), Received::Ended);
    }
    use crate::model::Idle;

    /// A sock_diag reply message as the kernel lays it out: nlmsghdr, inet_diag_msg, attributes.
    fn message(state: u8, timer: u8, retrans: u8, expires: u32, tcp_info: Option<&[u8]>) -> Vec<u8> {
        let mut diag = vec![0u8; INET_DIAG_MSG_LEN];
        diag[0] = AF_INET;
        diag[1] = state;
        diag[2] = timer;
        diag[3] = retrans;
        diag[4..6].copy_from_slice(&8787u16.to_be_bytes());
        diag[6..8].copy_from_slice(&40000u16.to_be_bytes());
        diag[8..12].copy_from_slice(&[127, 0, 0, 1]);
        diag[24..28].copy_from_slice(&[127, 0, 0, 2]);
        diag[52..56].copy_from_slice(&expires.to_ne_bytes());
        diag[56..60].copy_from_slice(&3u32.to_ne_bytes()); // rqueue
        diag[60..64].copy_from_slice(&5u32.to_ne_bytes()); // wqueue
        diag[64..68].copy_from_slice(&1000u32.to_ne_bytes()); // uid
        diag[68..72].copy_from_slice(&4242u32.to_ne_bytes()); // inode
        if let Some(info) = tcp_info {
            let nla_len = 4 + info.len();
            diag.extend_from_slice(&(nla_len as u16).to_ne_bytes());
            diag.extend_from_slice(&2u16.to_ne_bytes()); // INET_DIAG_INFO
            diag.extend_from_slice(info);
            diag.resize(diag.len().next_multiple_of(4), 0);
        }
        frame(SOCK_DIAG_BY_FAMILY, &diag)
    }

    fn frame(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend_from_slice(&[0u8; 8]);
        m.extend_from_slice(payload);
        m
    }

    fn tcp_info(last_sent: u32, last_recv: u32) -> Vec<u8> {
        let mut info = vec![0u8; 232];
        info[44..48].copy_from_slice(&last_sent.to_ne_bytes());
        info[52..56].copy_from_slice(&last_recv.to_ne_bytes());
        info
    }

    #[test]
    fn decodes_keepalive_timer_with_probes_and_idle_times() {
        let buf = message(1, 2, 2, 7412, Some(&tcp_info(1500, 2500)));
        let mut out = Vec::new();
        assert_eq!(decode_batch(&buf, &Filter::default(), Extras::default(), &mut out).unwrap(), Batch::More);
        let s = &out[0];
        assert_eq!(s.local.to_string(), "127.0.0.1:8787");
        assert_eq!(s.peer.to_string(), "127.0.0.2:40000");
        assert_eq!(s.timer, Some(Timer { kind: TimerKind::Keepalive, expires_ms: 7412, probes: 2 }));
        assert_eq!(s.idle, Some(Idle { last_send_ms: 1500, last_recv_ms: 2500 }));
        assert_eq!((s.recv_q, s.send_q, s.uid, s.inode), (3, 5, 1000, 4242));
    }

    #[test]
    fn keeps_what_the_crate_timer_enum_drops() {
        let mut out = Vec::new();
        let mut buf = message(6, 3, 0, 59_000, None);
        buf.extend(message(1, 5, 0, 40, None));
        buf.extend(frame(NLMSG_DONE, &[0; 4]));
        assert_eq!(decode_batch(&buf, &Filter::default(), Extras::default(), &mut out).unwrap(), Batch::Done);
        assert_eq!(out[0].timer, Some(Timer { kind: TimerKind::TimeWait, expires_ms: 59_000, probes: 0 }));
        assert_eq!(out[1].timer.unwrap().kind, TimerKind::DelayedAck);
    }

    #[test]
    fn extras_come_from_their_attributes() {
        let mut buf = message(1, 0, 0, 0, Some(&tcp_info(10, 20)));
        // Append INET_DIAG_SKMEMINFO (9 words) and INET_DIAG_CGROUP_ID (u64) to the message.
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&(4u16 + 36).to_ne_bytes());
        attrs.extend_from_slice(&INET_DIAG_SKMEMINFO.to_ne_bytes());
        attrs.extend((0u32..9).flat_map(|i| (i * 100).to_ne_bytes()));
        attrs.extend_from_slice(&12u16.to_ne_bytes());
        attrs.extend_from_slice(&INET_DIAG_CGROUP_ID.to_ne_bytes());
        attrs.extend_from_slice(&4242u64.to_ne_bytes());
        buf.extend_from_slice(&attrs);
        let len = buf.len() as u32;
        buf[..4].copy_from_slice(&len.to_ne_bytes());
        let all = Extras { info: true, memory: true, cgroup: true, no_tcp_info: false };
        let mut out = Vec::new();
        decode_batch(&buf, &Filter::default(), all, &mut out).unwrap();
        let d = &out[0].details;
        assert_eq!(d.cgroup_id, 4242);
        assert_eq!(d.memory.as_deref().unwrap().sndbuf, Some(300));
        assert_eq!(d.info.as_deref().unwrap().rtt_us(), Some(0));
        // Not asked for: not decoded, and not in the JSON.
        let mut out = Vec::new();
        decode_batch(&buf, &Filter::default(), Extras::default(), &mut out).unwrap();
        assert!(out[0].details.info.is_none() && out[0].details.memory.is_none());
        assert_eq!(out[0].details.cgroup_id, 4242, "the cgroup id comes unasked");
        // A TIME-WAIT socket has no tcp_info: every field is unknown, not zero.
        let mut out = Vec::new();
        decode_batch(&message(6, 3, 0, 100, None), &Filter::default(), all, &mut out).unwrap();
        assert_eq!(out[0].details.info.as_deref(), Some(&crate::model::TcpInfo::default()));
    }

    #[test]
    fn short_tcp_info_gives_no_idle_times_not_garbage() {
        let mut out = Vec::new();
        decode_batch(&message(1, 0, 0, 0, Some(&[0u8; 40])), &Filter::default(), Extras::default(), &mut out).unwrap();
        assert_eq!(out[0].idle, None);
    }

    #[test]
    fn truncated_and_malformed_replies_are_errors() {
        let good = message(1, 0, 0, 0, Some(&tcp_info(1, 1)));
        let filter = Filter::default();
        for cut in [3, 15, 20, 80, good.len() - 1] {
            let err = decode_batch(&good[..cut], &filter, Extras::default(), &mut Vec::new());
            assert!(matches!(err, Err(Error::NetlinkDecode(_))), "cut at {cut}: {err:?}");
        }
        // A header that claims fewer bytes than a header.
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(
            decode_batch(&bad, &filter, Extras::default(), &mut Vec::new()),
            Err(Error::NetlinkDecode(_))
        ));
        // An attribute whose length runs past the message.
        let mut bad = good.clone();
        bad[16 + INET_DIAG_MSG_LEN..16 + INET_DIAG_MSG_LEN + 2].copy_from_slice(&4000u16.to_ne_bytes());
        assert!(matches!(
            decode_batch(&bad, &filter, Extras::default(), &mut Vec::new()),
            Err(Error::NetlinkDecode(_))
        ));
        // Unknown state and family codes.
        let mut bad = good.clone();
        bad[17] = 42;
        assert!(matches!(
            decode_batch(&bad, &filter, Extras::default(), &mut Vec::new()),
            Err(Error::NetlinkDecode(_))
        ));
        let mut bad = good.clone();
        bad[18] = 9;
        assert!(matches!(
            decode_batch(&bad, &filter, Extras::default(), &mut Vec::new()),
            Err(Error::NetlinkDecode(_))
        ));
        let mut bad = good;
        bad[16] = 99;
        assert!(matches!(
            decode_batch(&bad, &filter, Extras::default(), &mut Vec::new()),
            Err(Error::NetlinkDecode(_))
        ));
    }

    #[test]
    fn error_codes_outside_errno_range_are_decode_errors() {
        // Found by the sock_diag fuzz target: negating i32::MIN overflowed.
        for code in [i32::MIN, 1, 5000, -5000] {
            let err = decode_batch(
                &frame(NLMSG_ERROR, &code.to_ne_bytes()),
                &Filter::default(),
                Extras::default(),
                &mut Vec::new(),
            );
            assert!(matches!(err, Err(Error::NetlinkDecode(_))), "{code}: {err:?}");
        }
    }

    #[test]
    fn kernel_errors_carry_errno() {
        let err = decode_batch(
            &frame(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes()),
            &Filter::default(),
            Extras::default(),
            &mut Vec::new(),
        );
        match err {
            Err(Error::NetlinkKernel(e)) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
            other => panic!("{other:?}"),
        }
    }

    /// The kernel's `inet_diag_bc_run`, for the port ops we emit.
    fn run(code: &[u8], sport: u16, dport: u16) -> bool {
        let mut pc = 0usize;
        let mut len = code.len() as isize;
        while len > 0 {
            let op = &code[pc..];
            let (yes, no) = (op[1] as usize, u16::from_ne_bytes([op[2], op[3]]) as usize);
            let port = || u16::from_ne_bytes([op[6], op[7]]);
            let ok = match op[0] {
                BC_JMP => false,
                BC_S_GE => sport >= port(),
                BC_S_LE => sport <= port(),
                BC_D_GE => dport >= port(),
                BC_D_LE => dport <= port(),
                other => panic!("unexpected op {other}"),
            };
            let step = if ok { yes } else { no };
            assert!(step >= 4 && step % 4 == 0, "bad jump {step}");
            pc += step;
            len -= step as isize;
        }
        len == 0
    }

    /// A read with a port filter walks once for both families, and gets what a dump of each
    /// family gets: the same sockets in the same order, IPv4's and IPv6's apart. Real sockets
    /// on loopback, a listener and a connection on one port in each family.
    #[test]
    fn one_walk_gives_each_familys_dump() {
        use std::net::{TcpListener, TcpStream};
        let (v4, v6) = (0..50)
            .find_map(|_| {
                let v4 = TcpListener::bind("127.0.0.1:0").ok()?;
                let v6 = TcpListener::bind(("::1", v4.local_addr().ok()?.port())).ok()?;
                Some((v4, v6))
            })
            .expect("a port free on 127.0.0.1 and ::1");
        let port = v4.local_addr().unwrap().port();
        let _clients = [TcpStream::connect(v4.local_addr().unwrap()), TcpStream::connect(v6.local_addr().unwrap())];
        let filter = Filter { ports: vec![port], ..Filter::default() };
        let extras = Extras::default();
        assert!(encode_walk_request(&filter, extras).is_some(), "a port filter walks once");
        assert!(encode_walk_request(&Filter::default(), extras).is_none(), "no filter: a dump per family");
        let key = |s: &Socket| (s.family, s.state, s.local, s.peer, s.cookie);
        let (walked4, walked6) =
            scan(&filter, extras, &Vec::new, &|acc: &mut Vec<_>, s: Socket| acc.push(key(&s))).unwrap();
        let each = |family| {
            let mut out = Vec::new();
            dump(&encode_request(family, &filter, extras), &filter, extras, &mut |s| out.push(key(&s))).unwrap();
            out
        };
        assert_eq!(walked4, each(Family::Inet));
        assert_eq!(walked6, each(Family::Inet6));
        // Each family: its listener and the server side of its connection (the local port).
        assert!(walked4.len() == 2 && walked4.iter().all(|k| k.0 == Family::Inet), "{walked4:?}");
        assert!(walked6.len() == 2 && walked6.iter().all(|k| k.0 == Family::Inet6), "{walked6:?}");
    }

    #[test]
    fn bytecode_selects_exactly_the_filtered_ports() {
        assert!(bytecode(&Filter::default()).is_none());
        let many: Vec<u16> = (1000..1040).collect(); // jumps longer than a u8 `yes` could hold
        let filter = Filter {
            ports: many.clone(),
            sport: Some(PortRangeLit(1010, 1030).into()),
            dport: Some(PortRangeLit(40000, 50000).into()),
            ..Filter::default()
        };
        let code = bytecode(&filter).unwrap();
        for sport in 990..1050 {
            for dport in [39_999, 40_000, 45_000, 50_000, 50_001] {
                let want = filter.matches_ports(sport, dport);
                assert_eq!(run(&code, sport, dport), want, "sport {sport} dport {dport}");
            }
        }
        let one = bytecode(&Filter { ports: vec![8787], ..Filter::default() }).unwrap();
        assert!(run(&one, 8787, 1) && !run(&one, 8786, 1) && !run(&one, 8788, 1));
        let req = encode_request(Family::Inet, &Filter { ports: vec![8787], ..Filter::default() }, Extras::default());
        assert_eq!(req.len(), 16 + 56 + 4 + RANGE_LEN);
        assert_eq!(u32::from_ne_bytes([req[0], req[1], req[2], req[3]]) as usize, req.len());
    }

    struct PortRangeLit(u16, u16);

    impl From<PortRangeLit> for crate::filter::PortRange {
        fn from(r: PortRangeLit) -> Self {
            crate::filter::PortRange { low: r.0, high: r.1 }
        }
    }

    #[test]
    fn request_carries_state_mask_and_info_extension() {
        let filter = Filter { states: crate::model::StateSet::of(&[TcpState::CloseWait]), ..Filter::default() };
        let req = encode_request(Family::Inet6, &filter, Extras::default());
        assert_eq!(req.len(), 16 + 56);
        assert_eq!(u16::from_ne_bytes([req[4], req[5]]), SOCK_DIAG_BY_FAMILY);
        assert_eq!(req[16], AF_INET6);
        assert_eq!(req[17], IPPROTO_TCP);
        assert_eq!(req[18], 1 << (2 - 1)); // INET_DIAG_INFO
        assert_eq!(u32::from_ne_bytes([req[20], req[21], req[22], req[23]]), 1 << 8);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any datagram: sockets, the end of the dump, or a typed error, never a panic.
        #[test]
        fn any_datagram_decodes_or_fails_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode_batch(&bytes, &Filter::default(), Extras::default(), &mut Vec::new());
        }

        /// A well-framed message around an arbitrary payload (header, attributes, tcp_info of
        /// any length).
        #[test]
        fn any_payload_in_a_valid_frame(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut m = Vec::new();
            m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
            m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
            m.extend_from_slice(&[0u8; 10]);
            m.extend_from_slice(&payload);
            match decode_batch(&m, &Filter::default(), Extras::default(), &mut Vec::new()) {
                Ok(_) | Err(Error::NetlinkDecode(_)) | Err(Error::NetlinkKernel(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
            }
        }
    }
}
