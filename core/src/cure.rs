//! `fix --persist`: the cure in the kernel. A cgroup `sock_ops` program, written here as
//! instructions (as `ss` writes its filter bytecode: no compiler, no object file), that gives
//! every connection a server accepts the keepalive options at the handshake
//! (`BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB`), whatever process accepts it, across restarts, with
//! no daemon: the attachment to the cgroup outlives the command.
//!
//! The program, for ports P1..Pn and options (level, name, value)…:
//!
//! ```text
//!  r6 = r1                          ; the context
//!  r2 = *(u32 *)(r6 + 0)            ; ctx->op
//!  if r2 != 5 goto out              ; only a passively established (accepted) socket
//!  r2 = *(u32 *)(r6 + 68)           ; ctx->local_port, host order
//!  if r2 == P1 goto set … if r2 == Pn goto set
//!  goto out
//! set: for each option:
//!  *(u32 *)(r10 - 4) = VALUE
//!  r1 = r6; r2 = LEVEL; r3 = NAME; r4 = r10; r4 += -4; r5 = 4
//!  call bpf_setsockopt              ; helper 49
//! out:
//!  r0 = 1                           ; always let the connection through
//!  exit
//! ```
//!
//! Which cure a program is, `--list` reads back from the kernel itself: the verifier rewrites the
//! context loads, but the port comparisons and the option blocks stay as written.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::SockOptName;

/// The name every webui-doctor cure is loaded under (at most 15 bytes): how `--list` and
/// `--remove` tell our programs from anyone else's.
pub const PROGRAM_NAME: &str = "wd_keepalive";

const BPF_PROG_TYPE_SOCK_OPS: u32 = 13;
const BPF_CGROUP_SOCK_OPS: u32 = 3;
const BPF_F_ALLOW_MULTI: u32 = 2;
const CMD_PROG_LOAD: u32 = 5;
const CMD_PROG_ATTACH: u32 = 8;
const CMD_PROG_DETACH: u32 = 9;
const CMD_PROG_GET_FD_BY_ID: u32 = 13;
const CMD_OBJ_GET_INFO_BY_FD: u32 = 15;
const CMD_PROG_QUERY: u32 = 16;
const HELPER_SETSOCKOPT: i32 = 49;
const HELPER_GET_NETNS_COOKIE: i32 = 122;
const OP_PASSIVE_ESTABLISHED: i32 = 5;
/// `offsetof(struct bpf_sock_ops, local_port)`.
const CTX_LOCAL_PORT: i16 = 68;

/// One eBPF instruction: `code`, `dst | src << 4`, `off`, `imm` (`<BBhi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// The opcode (class, size or source, operation).
    pub code: u8,
    /// Destination register in the low four bits, source register in the high four.
    pub regs: u8,
    /// The offset (memory operands and jumps).
    pub off: i16,
    /// The immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, regs: dst | src << 4, off, imm }
    }
    fn dst(self) -> u8 {
        self.regs & 0xf
    }
    fn src(self) -> u8 {
        self.regs >> 4
    }
    /// The eight bytes the kernel reads.
    pub fn encode(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
    /// An instruction from eight bytes (`None` when fewer are given).
    pub fn decode(b: &[u8]) -> Option<Insn> {
        let b: &[u8; 8] = b.try_into().ok()?;
        Some(Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

// Opcodes (class | size/op | mode/source).
const MOV64_X: u8 = 0xbf; // r_dst = r_src
const MOV64_K: u8 = 0xb7; // r_dst = imm
const ADD64_K: u8 = 0x07; // r_dst += imm
const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const ST_W: u8 = 0x62; // *(u32 *)(r_dst + off) = imm
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d; // if r_dst != r_src
const LD_DW: u8 = 0x18; // r_dst = imm64 (two slots: low, then high 32 bits)
const JEQ_K: u8 = 0x15;
const JA: u8 = 0x05;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

/// The level and option number `bpf_setsockopt` takes for each option.
fn level_and_name(o: SockOptName) -> (i32, i32) {
    match o {
        SockOptName::SoKeepalive => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        SockOptName::TcpNodelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        SockOptName::TcpKeepidle => (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
        SockOptName::TcpKeepintvl => (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
        SockOptName::TcpKeepcnt => (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
        SockOptName::TcpUserTimeout => (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
    }
}

fn option_of(level: i32, name: i32) -> Option<SockOptName> {
    [
        SockOptName::SoKeepalive,
        SockOptName::TcpNodelay,
        SockOptName::TcpKeepidle,
        SockOptName::TcpKeepintvl,
        SockOptName::TcpKeepcnt,
        SockOptName::TcpUserTimeout,
    ]
    .into_iter()
    .find(|&o| level_and_name(o) == (level, name))
}

/// What one cure does: the local ports it covers (in one network namespace, where it names
/// one) and the options it sets, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cure {
    /// The local ports it covers.
    pub ports: Vec<u16>,
    /// Each option it sets and its value.
    pub options: Vec<(SockOptName, u32)>,
    /// Only connections in the network namespace with this cookie (`SO_NETNS_COOKIE`), compared
    /// with `bpf_get_netns_cookie`; `None`: every namespace.
    pub netns_cookie: Option<u64>,
}

impl Cure {
    /// The program, as the module documentation shows it.
    pub fn program(&self) -> Vec<Insn> {
        let mut p = vec![
            Insn::new(MOV64_X, 6, 1, 0, 0),
            Insn::new(LDX_W, 2, 6, 0, 0),
            Insn::new(JNE_K, 2, 0, 0, OP_PASSIVE_ESTABLISHED), // offset patched below
        ];
        let mut netns_jump = None;
        if let Some(cookie) = self.netns_cookie {
            p.extend([
                Insn::new(MOV64_X, 1, 6, 0, 0),
                Insn::new(CALL, 0, 0, 0, HELPER_GET_NETNS_COOKIE),
                Insn::new(LD_DW, 2, 0, 0, cookie as u32 as i32),
                Insn::new(0, 0, 0, 0, (cookie >> 32) as u32 as i32),
            ]);
            netns_jump = Some(p.len());
            p.push(Insn::new(JNE_X, 0, 2, 0, 0)); // to `out`, patched below
        }
        p.push(Insn::new(LDX_W, 2, 6, CTX_LOCAL_PORT, 0));
        let ports_at = p.len();
        for &port in &self.ports {
            p.push(Insn::new(JEQ_K, 2, 0, 0, i32::from(port))); // to `set`, patched below
        }
        let ja_at = p.len();
        p.push(Insn::new(JA, 0, 0, 0, 0)); // to `out`, patched below
        let set = p.len();
        for &(option, value) in &self.options {
            let (level, name) = level_and_name(option);
            p.extend([
                Insn::new(ST_W, 10, 0, -4, i32::try_from(value).unwrap_or(i32::MAX)),
                Insn::new(MOV64_X, 1, 6, 0, 0),
                Insn::new(MOV64_K, 2, 0, 0, level),
                Insn::new(MOV64_K, 3, 0, 0, name),
                Insn::new(MOV64_X, 4, 10, 0, 0),
                Insn::new(ADD64_K, 4, 0, 0, -4),
                Insn::new(MOV64_K, 5, 0, 0, 4),
                Insn::new(CALL, 0, 0, 0, HELPER_SETSOCKOPT),
            ]);
        }
        let out = p.len();
        p.extend([Insn::new(MOV64_K, 0, 0, 0, 1), Insn::new(EXIT, 0, 0, 0, 0)]);
        // A jump at `at` lands on `at + 1 + off`.
        let jump = |at: usize, to: usize| i16::try_from(to - at - 1).unwrap_or(i16::MAX);
        p[2].off = jump(2, out);
        if let Some(at) = netns_jump {
            p[at].off = jump(at, out);
        }
        for (i, insn) in p.iter_mut().enumerate().take(ja_at).skip(ports_at) {
            insn.off = jump(i, set);
        }
        p[ja_at].off = jump(ja_at, out);
        p
    }

    /// Reads a cure back from a program's instructions (as loaded, or as the kernel reports them
    /// translated): the ports compared and the option blocks. `None` for a program of another shape.
    pub fn read_back(insns: &[Insn]) -> Option<Cure> {
        let ports: Vec<u16> = insns
            .iter()
            .filter(|i| i.code == JEQ_K && i.dst() == 2)
            .filter_map(|i| u16::try_from(i.imm).ok())
            .collect();
        let mut options = Vec::new();
        for w in insns.windows(8) {
            let value_stored = w[0].code == ST_W && w[0].dst() == 10 && w[0].off == -4;
            if value_stored && w[2].code == MOV64_K && w[3].code == MOV64_K && w[7].code == CALL {
                let option = option_of(w[2].imm, w[3].imm)?;
                options.push((option, u32::try_from(w[0].imm).ok()?));
            }
        }
        let netns_cookie = insns
            .windows(2)
            .find(|w| w[0].code == LD_DW && w[0].dst() == 2)
            .map(|w| u64::from(w[0].imm as u32) | u64::from(w[1].imm as u32) << 32);
        (!ports.is_empty() && !options.is_empty()).then_some(Cure { ports, options, netns_cookie })
    }

    /// The program as text, one instruction a line (what `--dry-run` prints).
    pub fn listing(&self) -> String {
        self.program().iter().enumerate().map(|(n, i)| format!("{n:3}: {}\n", describe(*i))).collect()
    }
}

/// One instruction in the notation of `bpftool prog dump xlated`.
pub fn describe(i: Insn) -> String {
    let (d, s) = (i.dst(), i.src());
    match i.code {
        MOV64_X => format!("r{d} = r{s}"),
        MOV64_K => format!("r{d} = {}", i.imm),
        ADD64_K => format!("r{d} += {}", i.imm),
        LDX_W => format!("r{d} = *(u32 *)(r{s} {:+})", i.off),
        ST_W => format!("*(u32 *)(r{d} {:+}) = {}", i.off, i.imm),
        JNE_K => format!("if r{d} != {:#x} goto pc{:+}", i.imm, i.off),
        JEQ_K => format!("if r{d} == {:#x} goto pc{:+}", i.imm, i.off),
        JA => format!("goto pc{:+}", i.off),
        CALL if i.imm == HELPER_SETSOCKOPT => "call bpf_setsockopt#49".to_owned(),
        CALL if i.imm == HELPER_GET_NETNS_COOKIE => "call bpf_get_netns_cookie#122".to_owned(),
        LD_DW => format!("r{d} = {:#x} (low 32 bits; the next slot holds the high ones)", i.imm as u32),
        JNE_X => format!("if r{d} != r{s} goto pc{:+}", i.off),
        CALL => format!("call #{}", i.imm),
        EXIT => "exit".to_owned(),
        c => format!("(code {c:#04x})"),
    }
}

/// A `bpf()` failure, with the verifier's log when loading was refused.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The verifier or the kernel refused the program.
    #[error("the kernel refused to load the keepalive program: {source}{}", verifier(.log))]
    Load {
        /// The error.
        source: std::io::Error,
        /// The verifier's log.
        log: String,
    },
    /// A cgroup directory could not be opened.
    #[error("{what} {}: {source}", .path.display())]
    Cgroup {
        /// What was being done.
        what: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another `bpf()` command failed.
    #[error("bpf({what}): {source}")]
    Call {
        /// The command.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

impl BpfError {
    /// The kernel has no cgroup BPF, no `bpf(2)`, or does not let this process use it (no
    /// CAP_BPF/CAP_SYS_ADMIN, or `kernel.unprivileged_bpf_disabled`): a reason to fall back, not a bug.
    pub fn unavailable(&self) -> bool {
        let source = match self {
            BpfError::Load { source, .. } | BpfError::Call { source, .. } => source,
            BpfError::Cgroup { .. } => return false,
        };
        matches!(source.raw_os_error(), Some(libc::ENOSYS | libc::EPERM | libc::EACCES | libc::EOPNOTSUPP))
    }
}

fn verifier(log: &str) -> String {
    if log.trim().is_empty() { String::new() } else { format!("; the verifier said:\n{}", log.trim_end()) }
}

type Result<T> = std::result::Result<T, BpfError>;

fn attr() -> [u8; crate::os::BPF_ATTR_SIZE] {
    [0; crate::os::BPF_ATTR_SIZE]
}

fn put32(a: &mut [u8], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(a: &mut [u8], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn get32(a: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]])
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) as a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Loads `cure`'s program; on refusal, loads it again with the verifier's log on to say why.
pub fn load(cure: &Cure) -> Result<OwnedFd> {
    let code: Vec<u8> = cure.program().iter().flat_map(|i| i.encode()).collect();
    let license = c"GPL";
    let try_load = |log: Option<&mut Vec<u8>>| {
        let mut a = attr();
        put32(&mut a, 0, BPF_PROG_TYPE_SOCK_OPS);
        put32(&mut a, 4, u32::try_from(code.len() / 8).unwrap_or(u32::MAX));
        put64(&mut a, 8, code.as_ptr() as u64);
        put64(&mut a, 16, license.as_ptr() as u64);
        if let Some(log) = log {
            put32(&mut a, 24, 1);
            put32(&mut a, 28, u32::try_from(log.len()).unwrap_or(u32::MAX));
            put64(&mut a, 32, log.as_mut_ptr() as u64);
        }
        a[48..48 + PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME.as_bytes());
        crate::os::bpf(CMD_PROG_LOAD, &mut a)
    };
    match try_load(None) {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => {
            let mut log = vec![0u8; 64 * 1024];
            let _ = try_load(Some(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(BpfError::Load { source, log: String::from_utf8_lossy(&log[..end]).into_owned() })
        }
    }
}

/// A cgroup v2 directory, opened as `BPF_PROG_ATTACH` takes it.
pub fn open_cgroup(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .map_err(|source| BpfError::Cgroup { what: "opening cgroup", path: path.to_owned(), source })
}

/// Attaches a loaded program to a cgroup, beside any others (`BPF_F_ALLOW_MULTI`).
pub fn attach(cgroup: &std::fs::File, prog: &OwnedFd) -> Result<()> {
    let mut a = attr();
    put32(&mut a, 0, fd_u32(cgroup));
    put32(&mut a, 4, fd_u32(prog));
    put32(&mut a, 8, BPF_CGROUP_SOCK_OPS);
    put32(&mut a, 12, BPF_F_ALLOW_MULTI);
    crate::os::bpf(CMD_PROG_ATTACH, &mut a).map(drop).map_err(|source| BpfError::Call { what: "attach", source })
}

/// Detaches the program `prog` from a cgroup.
pub fn detach(cgroup: &std::fs::File, prog: &OwnedFd) -> Result<()> {
    let mut a = attr();
    put32(&mut a, 0, fd_u32(cgroup));
    put32(&mut a, 4, fd_u32(prog));
    put32(&mut a, 8, BPF_CGROUP_SOCK_OPS);
    crate::os::bpf(CMD_PROG_DETACH, &mut a).map(drop).map_err(|source| BpfError::Call { what: "detach", source })
}

/// The ids of the sock_ops programs attached directly to a cgroup (not its parents').
pub fn query(cgroup: &std::fs::File) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut a = attr();
    put32(&mut a, 0, fd_u32(cgroup));
    put32(&mut a, 4, BPF_CGROUP_SOCK_OPS);
    put64(&mut a, 16, ids.as_mut_ptr() as u64);
    put32(&mut a, 24, u32::try_from(ids.len()).unwrap_or(0));
    crate::os::bpf(CMD_PROG_QUERY, &mut a).map_err(|source| BpfError::Call { what: "query", source })?;
    let count = usize::try_from(get32(&a, 24)).unwrap_or(0).min(ids.len());
    ids.truncate(count);
    Ok(ids)
}

/// A loaded program, as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// The program's id.
    pub id: u32,
    /// Its name (`webui_doctor` for ours).
    pub name: String,
    /// Nanoseconds since boot when it was loaded.
    pub load_time_ns: u64,
    /// Its instructions, where the kernel gives them (root).
    #[serde(skip)]
    pub insns: Vec<Insn>,
}

/// A descriptor for the program with this id.
pub fn program_fd(id: u32) -> Result<OwnedFd> {
    let mut a = attr();
    put32(&mut a, 0, id);
    crate::os::bpf(CMD_PROG_GET_FD_BY_ID, &mut a).map(owned).map_err(|source| BpfError::Call { what: "get", source })
}

/// What the kernel says of the program behind `fd`: id, name, load time, translated code.
pub fn info(fd: &OwnedFd) -> Result<Program> {
    // `struct bpf_prog_info`: xlated_prog_len at 20, xlated_prog_insns at 32, load_time at 40,
    // name at 64; 128 bytes hold every field read here.
    let call = |buf: &mut [u8; 128]| {
        let mut a = attr();
        put32(&mut a, 0, fd_u32(fd));
        put32(&mut a, 4, 128);
        put64(&mut a, 8, buf.as_mut_ptr() as u64);
        crate::os::bpf(CMD_OBJ_GET_INFO_BY_FD, &mut a).map_err(|source| BpfError::Call { what: "info", source })
    };
    let mut first = [0u8; 128];
    call(&mut first)?;
    let len = usize::try_from(get32(&first, 20)).unwrap_or(0).min(1 << 20);
    let mut code = vec![0u8; len];
    let mut second = [0u8; 128];
    put32(&mut second, 20, u32::try_from(len).unwrap_or(0));
    put64(&mut second, 32, code.as_mut_ptr() as u64);
    call(&mut second)?;
    let name_end = second[64..80].iter().position(|&b| b == 0).unwrap_or(16);
    Ok(Program {
        id: get32(&second, 4),
        name: String::from_utf8_lossy(&second[64..64 + name_end]).into_owned(),
        load_time_ns: u64::from_ne_bytes(second[40..48].try_into().unwrap_or_default()),
        insns: code.chunks_exact(8).filter_map(Insn::decode).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cure() -> Cure {
        Cure {
            netns_cookie: None,
            ports: vec![8787, 8080],
            options: vec![
                (SockOptName::SoKeepalive, 1),
                (SockOptName::TcpNodelay, 1),
                (SockOptName::TcpKeepidle, 10),
                (SockOptName::TcpKeepintvl, 5),
                (SockOptName::TcpKeepcnt, 3),
                (SockOptName::TcpUserTimeout, 25000),
            ],
        }
    }

    #[test]
    fn the_program_has_the_measured_shape_and_reads_back() {
        let c = Cure { ports: vec![8787], ..cure() };
        let p = c.program();
        // 4 + 1 port + goto + 6 x 8 + 2: the 53 of the design notes plus the port filter.
        assert_eq!(p.len(), 4 + 1 + 1 + 48 + 2);
        assert_eq!(describe(p[2]), format!("if r2 != 0x5 goto pc+{}", p.len() - 2 - 3));
        assert_eq!(describe(p[4]), "if r2 == 0x2253 goto pc+1");
        assert_eq!(describe(p[p.len() - 2]), "r0 = 1");
        assert_eq!(Cure::read_back(&p), Some(c));
        let two = cure();
        assert_eq!(Cure::read_back(&two.program()), Some(two.clone()));
        let bytes: Vec<u8> = two.program().iter().flat_map(|i| i.encode()).collect();
        let decoded: Vec<Insn> = bytes.chunks_exact(8).filter_map(Insn::decode).collect();
        assert_eq!(decoded, two.program());
        assert!(two.listing().contains("call bpf_setsockopt#49"));
        // A namespace's cookie, 64 bits across two slots, reads back too.
        let ns = Cure { netns_cookie: Some(0x1234_5678_9abc_def0), ..cure() };
        assert_eq!(ns.program().len(), two.program().len() + 5);
        assert_eq!(Cure::read_back(&ns.program()), Some(ns.clone()));
        assert!(ns.listing().contains("call bpf_get_netns_cookie#122"), "{}", ns.listing());
    }
}

/// A webui-doctor cure attached to a cgroup, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attached {
    /// The cgroup, relative to the cgroup2 mount (`/` is the whole host).
    pub cgroup: String,
    /// The program's id.
    pub id: u32,
    /// The ports it covers.
    pub ports: Vec<u16>,
    /// The options it sets.
    pub options: Vec<AttachedOption>,
    /// The network namespace's cookie the cure is limited to; `null`: every namespace.
    pub netns_cookie: Option<u64>,
    /// Seconds since boot when the program was loaded.
    pub loaded_s: u64,
}

/// One option a cure sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AttachedOption {
    /// The option.
    pub option: SockOptName,
    /// Its value.
    pub value: u32,
}

/// What `persist` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Persisted {
    /// A new program, attached.
    Attached {
        /// The program's id.
        id: u32,
    },
    /// The same cure was attached already; nothing changed.
    Unchanged {
        /// The program's id.
        id: u32,
    },
    /// Attached, and our earlier programs for any of these ports in that cgroup detached.
    Replaced {
        /// The new program's id.
        id: u32,
        /// The ids of those detached.
        detached: Vec<u32>,
    },
}

/// `--cgroup PATH` as a directory under the cgroup2 `mount`: a path relative to the mount (`/`,
/// `/system.slice/nginx.service`, as `ss --cgroup` prints them) or an absolute path inside it.
/// Returns the directory and its path relative to the mount.
pub fn resolve_cgroup(mount: &Path, path: &str) -> std::result::Result<(PathBuf, String), String> {
    let rel = match Path::new(path).strip_prefix(mount) {
        Ok(rest) => format!("/{}", rest.display()),
        Err(_) => crate::cgroup::normalize(path),
    };
    if rel.split('/').any(|part| part == ".." || part == ".") {
        return Err(format!("cgroup '{path}' must not contain . or .."));
    }
    let dir = mount.join(rel.trim_start_matches('/'));
    if !dir.is_dir() {
        return Err(format!("no cgroup {rel} under {} (the cgroup2 mount)", mount.display()));
    }
    Ok((dir, rel))
}

/// Attaches `cure` to the cgroup `dir` unless the same cure is attached there already; our own
/// earlier programs for any of the same ports in that cgroup are detached once the new one is on.
pub fn persist(dir: &Path, cure: &Cure) -> Result<Persisted> {
    let cgroup = open_cgroup(dir)?;
    let ours = ours_in(&cgroup)?;
    if let Some((id, _)) = ours.iter().find(|(_, c)| c == cure) {
        return Ok(Persisted::Unchanged { id: *id });
    }
    let prog = load(cure)?;
    attach(&cgroup, &prog)?;
    let id = info(&prog)?.id;
    let mut detached = Vec::new();
    for (old, _) in ours.iter().filter(|(_, c)| c.ports.iter().any(|p| cure.ports.contains(p))) {
        if let Ok(fd) = program_fd(*old)
            && detach(&cgroup, &fd).is_ok()
        {
            detached.push(*old);
        }
    }
    Ok(if detached.is_empty() { Persisted::Attached { id } } else { Persisted::Replaced { id, detached } })
}

/// Our programs attached directly to `cgroup`, with the cure each one is.
fn ours_in(cgroup: &std::fs::File) -> Result<Vec<(u32, Cure)>> {
    let mut out = Vec::new();
    for id in query(cgroup)? {
        // A program detached since the query is simply gone.
        let Ok(fd) = program_fd(id) else { continue };
        let Ok(p) = info(&fd) else { continue };
        if p.name == PROGRAM_NAME
            && let Some(c) = Cure::read_back(&p.insns)
        {
            out.push((id, c));
        }
    }
    Ok(out)
}

/// Every webui-doctor cure attached anywhere under the cgroup2 `mount`, from the kernel.
pub fn list(mount: &Path) -> Result<Vec<Attached>> {
    let mut out = Vec::new();
    let mut dirs = vec![(mount.to_owned(), "/".to_owned(), 0usize)];
    while let Some((dir, rel, depth)) = dirs.pop() {
        let Ok(cgroup) = open_cgroup(&dir) else { continue };
        for id in query(&cgroup)? {
            let Ok(fd) = program_fd(id) else { continue };
            let Ok(p) = info(&fd) else { continue };
            if p.name != PROGRAM_NAME {
                continue;
            }
            let Some(c) = Cure::read_back(&p.insns) else { continue };
            out.push(Attached {
                cgroup: rel.clone(),
                id,
                ports: c.ports,
                options: c.options.into_iter().map(|(option, value)| AttachedOption { option, value }).collect(),
                netns_cookie: c.netns_cookie,
                loaded_s: p.load_time_ns / 1_000_000_000,
            });
        }
        if depth >= 32 {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let name = e.file_name().to_string_lossy().into_owned();
                let child = if rel == "/" { format!("/{name}") } else { format!("{rel}/{name}") };
                dirs.push((e.path(), child, depth + 1));
            }
        }
    }
    out.sort_by(|a, b| (&a.cgroup, a.id).cmp(&(&b.cgroup, b.id)));
    Ok(out)
}

/// Detaches each of `cures` (ours, from `list`): exactly those programs, nobody else's.
pub fn remove(mount: &Path, cures: &[Attached]) -> Result<Vec<u32>> {
    let mut removed = Vec::new();
    for a in cures {
        let cgroup = open_cgroup(&mount.join(a.cgroup.trim_start_matches('/')))?;
        let Ok(fd) = program_fd(a.id) else { continue };
        // Still ours and still there: checked again on the program itself.
        if info(&fd).is_ok_and(|p| p.name == PROGRAM_NAME) {
            detach(&cgroup, &fd)?;
            removed.push(a.id);
        }
    }
    Ok(removed)
}

/// The local ports some webui-doctor cure covers anywhere on the host; empty where the kernel
/// will not say (not root, no cgroup2, no BPF).
pub fn cured_ports(mount: &Path) -> std::collections::BTreeSet<u16> {
    list(mount).map(|all| all.into_iter().flat_map(|a| a.ports).collect()).unwrap_or_default()
}
