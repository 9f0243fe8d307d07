//! `--source auto` falls back to procfs when the kernel refuses netlink. The refusal is real: the
//! child runs under a seccomp filter that fails `socket(AF_NETLINK, ...)` with EPERM, as a
//! locked-down container's profile would.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::util::*;

/// Installs, in the calling (child) process, a seccomp filter that makes socket(AF_NETLINK, ...)
/// fail with EPERM and allows everything else.
fn deny_netlink() -> std::io::Result<()> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter, sock_fprog};
    let stmt = |code: u32, k: u32| sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jump = |k: u32, jt: u8, jf: u8| sock_filter { code: (BPF_JMP | BPF_JEQ | BPF_K) as u16, jt, jf, k };
    let filter = [
        // seccomp_data: nr at offset 0, args[0] at offset 16 (low half on little-endian).
        stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        jump(libc::SYS_socket as u32, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, 16),
        jump(libc::AF_NETLINK as u32, 0, 1),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut sock_filter };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive them, and the kernel copies the program.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const sock_fprog) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn without_netlink(args: &[&str]) -> std::process::Output {
    let mut c: Command = cmd();
    c.args(args);
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe prctl.
    unsafe { c.pre_exec(deny_netlink) };
    c.output().unwrap()
}

#[test]
fn auto_falls_back_to_procfs_when_netlink_is_refused() {
    if !require(cfg!(target_arch = "x86_64"), "x86_64 (the seccomp filter uses its syscall numbers)") {
        return;
    }
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let out = without_netlink(&["sockets", "--port", &port, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "procfs");
    assert_eq!(v["summary"]["total"], 4);
    assert_eq!(v["summary"]["by_state"]["close-wait"], 1);

    // Asked for netlink explicitly, the refusal is an error, not a silent switch.
    let out = without_netlink(&["sockets", "--source", "netlink"]);
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).trim(), "webui-doctor: netlink sock_diag refused: Operation not permitted (os error 1)");
    // The gate works through the fallback too, and says which source it used.
    let out = without_netlink(&["check", "--port", &port]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("source: procfs"), "{}", stdout(&out));
}
