//! `struct tcp_info` (include/uapi/linux/tcp.h) decoded by length. The kernel sends as many bytes
//! as its own struct has, and the struct has grown over the years (`snd_wnd` came in 5.4,
//! `rcv_wnd` in 6.2): each field is read only when the bytes received reach past its end, so an
//! older kernel gives `None` for what it does not have and a newer one's extra bytes are ignored.

use crate::model::{Idle, Memory, TcpInfo};

/// Byte offsets in `struct tcp_info`; stable since each field was added (the struct only grows).
mod at {
    pub const RETRANSMITS: usize = 2;
    pub const PROBES: usize = 3;
    pub const BACKOFF: usize = 4;
    pub const RTO: usize = 8;
    pub const UNACKED: usize = 24;
    pub const LOST: usize = 32;
    pub const LAST_DATA_SENT: usize = 44;
    pub const LAST_DATA_RECV: usize = 52;
    pub const LAST_ACK_RECV: usize = 56;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const TOTAL_RETRANS: usize = 100;
    pub const BYTES_ACKED: usize = 120;
    pub const BYTES_RECEIVED: usize = 128;
    pub const NOTSENT_BYTES: usize = 144;
    pub const DELIVERY_RATE: usize = 160;
    pub const BUSY_TIME: usize = 168;
    pub const RWND_LIMITED: usize = 176;
    pub const SNDBUF_LIMITED: usize = 184;
    pub const SND_WND: usize = 228;
    pub const RCV_WND: usize = 232;
}

fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The idle times every listing shows (`last_data_recv`, `last_data_sent`); `None` when the
/// struct is too short for both.
pub fn idle(b: &[u8]) -> Option<Idle> {
    Some(Idle {
        last_send_ms: u64::from(u32_at(b, at::LAST_DATA_SENT)?),
        last_recv_ms: u64::from(u32_at(b, at::LAST_DATA_RECV)?),
    })
}

/// Unanswered keepalive or window probes (`tcpi_probes`), for `events`.
pub fn probes(b: &[u8]) -> Option<u8> {
    u8_at(b, at::PROBES)
}

/// The `-i` fields. Microsecond counters become milliseconds (truncated, as `ss -i` rounds
/// them for display) and the delivery rate bytes/s becomes bits/s, as `ss -i` prints it.
pub fn decode(b: &[u8]) -> TcpInfo {
    let us_to_ms = |v: u64| v / 1000;
    let mut info = TcpInfo::default();
    info.set_rtt_us(u32_at(b, at::RTT));
    info.set_rttvar_us(u32_at(b, at::RTTVAR));
    info.set_rto_ms(u32_at(b, at::RTO).map(|us| us / 1000));
    info.set_backoff(u8_at(b, at::BACKOFF));
    info.set_retransmits(u8_at(b, at::RETRANSMITS));
    info.set_total_retrans(u32_at(b, at::TOTAL_RETRANS));
    info.set_unacked(u32_at(b, at::UNACKED));
    info.set_lost(u32_at(b, at::LOST));
    info.set_notsent_bytes(u32_at(b, at::NOTSENT_BYTES));
    info.set_last_ack_ms(u32_at(b, at::LAST_ACK_RECV));
    info.set_snd_wnd(u32_at(b, at::SND_WND));
    info.set_rcv_wnd(u32_at(b, at::RCV_WND));
    info.set_bytes_acked(u64_at(b, at::BYTES_ACKED));
    info.set_bytes_received(u64_at(b, at::BYTES_RECEIVED));
    info.set_delivery_rate_bps(u64_at(b, at::DELIVERY_RATE).map(|bytes| bytes.saturating_mul(8)));
    info.set_busy_ms(u64_at(b, at::BUSY_TIME).map(us_to_ms));
    info.set_rwnd_limited_ms(u64_at(b, at::RWND_LIMITED).map(us_to_ms));
    info.set_sndbuf_limited_ms(u64_at(b, at::SNDBUF_LIMITED).map(us_to_ms));
    info
}

/// `INET_DIAG_SKMEMINFO`: an array of u32 indexed by `SK_MEMINFO_*` (include/uapi/linux/
/// sock_diag.h), also decoded by length.
pub fn memory(b: &[u8]) -> Memory {
    const RMEM_ALLOC: usize = 0;
    const RCVBUF: usize = 1;
    const WMEM_ALLOC: usize = 2;
    const SNDBUF: usize = 3;
    const WMEM_QUEUED: usize = 5;
    let get = |i: usize| u32_at(b, i * 4);
    Memory {
        rmem_alloc: get(RMEM_ALLOC),
        rcvbuf: get(RCVBUF),
        wmem_alloc: get(WMEM_ALLOC),
        sndbuf: get(SNDBUF),
        wmem_queued: get(WMEM_QUEUED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `tcp_info` of `len` bytes where every u32 slot holds its own offset and every u64 slot
    /// its offset + 1,000,000 (so a field read from the wrong place shows).
    fn fake(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[at::RETRANSMITS] = 2;
        b[at::BACKOFF] = 4;
        for off in [
            at::RTO,
            at::UNACKED,
            at::LOST,
            at::LAST_DATA_SENT,
            at::LAST_DATA_RECV,
            at::LAST_ACK_RECV,
            at::RTT,
            at::RTTVAR,
            at::TOTAL_RETRANS,
            at::NOTSENT_BYTES,
            at::SND_WND,
            at::RCV_WND,
        ] {
            if off + 4 <= len {
                b[off..off + 4].copy_from_slice(&(off as u32 * 1000).to_ne_bytes());
            }
        }
        for off in [
            at::BYTES_ACKED,
            at::BYTES_RECEIVED,
            at::DELIVERY_RATE,
            at::BUSY_TIME,
            at::RWND_LIMITED,
            at::SNDBUF_LIMITED,
        ] {
            if off + 8 <= len {
                b[off..off + 8].copy_from_slice(&(off as u64 * 1000 + 1_000_000).to_ne_bytes());
            }
        }
        b
    }

    #[test]
    fn this_kernels_length_gives_every_field() {
        let i = decode(&fake(248));
        assert_eq!(i.rto_ms(), Some(8));
        assert_eq!((i.retransmits(), i.backoff()), (Some(2), Some(4)));
        assert_eq!(i.unacked(), Some(24_000));
        assert_eq!(i.last_ack_ms(), Some(56_000));
        assert_eq!((i.rtt_us(), i.rttvar_us()), (Some(68_000), Some(72_000)));
        assert_eq!(i.bytes_acked(), Some(1_120_000));
        assert_eq!(i.delivery_rate_bps(), Some(1_160_000 * 8));
        assert_eq!(i.busy_ms(), Some(1_168));
        assert_eq!(i.sndbuf_limited_ms(), Some(1_184));
        assert_eq!((i.snd_wnd(), i.rcv_wnd()), (Some(228_000), Some(232_000)));
        assert_eq!(idle(&fake(248)).map(|i| (i.last_send_ms, i.last_recv_ms)), Some((44_000, 52_000)));
    }

    #[test]
    fn shorter_structs_give_none_past_their_end() {
        // 232 bytes: a kernel before rcv_wnd (5.4 to 6.1).
        let i = decode(&fake(232));
        assert_eq!((i.snd_wnd(), i.rcv_wnd()), (Some(228_000), None));
        // 104 bytes: the struct of Linux 3.x, up to total_retrans.
        let i = decode(&fake(104));
        assert_eq!(i.total_retrans(), Some(100_000));
        assert_eq!((i.bytes_acked(), i.notsent_bytes(), i.busy_ms(), i.snd_wnd()), (None, None, None, None));
        // A field cut in half is absent, not read from the bytes that are there.
        let i = decode(&fake(at::RTT + 3));
        assert_eq!((i.rtt_us(), i.unacked()), (None, Some(24_000)));
        assert_eq!(decode(&[]), TcpInfo::default());
        assert_eq!(idle(&fake(50)), None);
    }

    #[test]
    fn longer_structs_are_read_up_to_what_we_know() {
        let mut long = fake(248);
        long.extend_from_slice(&[0xff; 64]);
        assert_eq!(decode(&long), decode(&fake(248)));
    }

    #[test]
    fn memory_by_length() {
        let words: Vec<u8> = (0u32..9).flat_map(|i| (i * 10).to_ne_bytes()).collect();
        let m = memory(&words);
        assert_eq!(
            (m.rmem_alloc, m.rcvbuf, m.wmem_alloc, m.sndbuf, m.wmem_queued),
            (Some(0), Some(10), Some(20), Some(30), Some(50))
        );
        let m = memory(&words[..16]);
        assert_eq!((m.sndbuf, m.wmem_queued), (Some(30), None));
    }
}
