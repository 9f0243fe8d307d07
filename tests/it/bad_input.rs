//! Malformed `/proc/net/tcp` content under `PROC_ROOT`: one clear line naming the file and line,
//! exit 2, never a panic and never a partial count. And `| head` ends quietly.

use std::fs;
use std::process::Command;

use crate::util::*;

const HEADER: &str =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const GOOD: &str = "   0: 0100007F:2253 00000000:0000 0A 00000000:00000080 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n";

fn proc_root(tcp: &str, tcp6: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("net")).unwrap();
    fs::write(dir.path().join("net/tcp"), tcp).unwrap();
    if let Some(t6) = tcp6 {
        fs::write(dir.path().join("net/tcp6"), t6).unwrap();
    }
    dir
}

#[test]
fn malformed_lines_name_file_and_line() {
    let cases = [
        (
            "truncated line",
            format!("{HEADER}{GOOD}   1: 0100007F:2253 0100007F:9C40 01 00000000:00000000\n"),
            3,
            "missing column",
        ),
        (
            "bad hex",
            format!("{HEADER}   0: 0100007F:2253 0100ZZ7F:9C40 01 00000000:00000000 00:00000000 00000000 0 0 5 1\n"),
            2,
            "rem_address",
        ),
        ("missing columns", format!("{HEADER}   0: 0100007F:2253\n"), 2, "missing column 'rem_address'"),
        ("empty file", String::new(), 1, "empty file"),
        (
            "huge queue",
            format!(
                "{HEADER}   0: 0100007F:2253 0100007F:9C40 01 FFFFFFFFFFFF:00000000 00:00000000 00000000 0 0 5 1\n"
            ),
            2,
            "tx_queue",
        ),
        (
            "huge inode",
            format!("{HEADER}   0: 0100007F:2253 0100007F:9C40 01 0:0 00:0 0 0 0 184467440737095516160 1\n"),
            2,
            "inode",
        ),
        (
            "unknown state",
            format!("{HEADER}   0: 0100007F:2253 0100007F:9C40 0C 0:0 00:0 0 0 0 5 1\n"),
            2,
            "unknown TCP state code 0x0c",
        ),
    ];
    for (what, tcp, line, needle) in cases {
        let dir = proc_root(&tcp, Some(HEADER));
        let out = cmd().env("PROC_ROOT", dir.path()).args(["sockets", "--source", "procfs"]).output().unwrap();
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}: printed a partial result");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        let location = format!("{}:{line}: ", dir.path().join("net/tcp").display());
        assert!(err.contains(&location), "{what}: {err} lacks {location}");
        assert!(err.contains(needle), "{what}: {err} lacks {needle}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

#[test]
fn fixture_tables_are_read_and_counted() {
    let tcp6 = format!(
        "{HEADER}   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 08 00000000:00000000 00:00000000 00000000  1000        0 777 1\n"
    );
    let dir = proc_root(&format!("{HEADER}{GOOD}"), Some(&tcp6));
    let out = cmd()
        .env("PROC_ROOT", dir.path())
        .args(["sockets", "--source", "procfs", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "procfs");
    assert_eq!(v["summary"]["total"], 2);
    assert_eq!(v["summary"]["by_state"]["listening"], 1);
    assert_eq!(v["summary"]["by_state"]["close-wait"], 1);
    assert_eq!(v["sockets"][1]["local"], "[::1]:8080");
    assert_eq!(v["sockets"][1]["uid"], 1000);

    // The gate reads the same fixture: one CLOSE-WAIT on :8080.
    let out =
        cmd().env("PROC_ROOT", dir.path()).args(["check", "--source", "procfs", "--port", "8080"]).output().unwrap();
    assert_eq!(code(&out), 1);

    // A missing tcp6 (IPv6 disabled) is no IPv6 sockets; a missing tcp is an error.
    let dir = proc_root(&format!("{HEADER}{GOOD}"), None);
    let out = cmd().env("PROC_ROOT", dir.path()).args(["sockets", "--source", "procfs", "--summary"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("sockets: 1 (listening 1)"), "{}", stdout(&out));
    fs::remove_file(dir.path().join("net/tcp")).unwrap();
    let out = cmd().env("PROC_ROOT", dir.path()).args(["sockets", "--source", "procfs"]).output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("net/tcp: No such file or directory"), "{}", stderr(&out));
}

/// `webui-doctor sockets | head -1` exits 0 without a word on stderr, however long the table.
#[test]
fn piping_into_head_ends_quietly() {
    let mut tcp = String::from(HEADER);
    for i in 0..20_000u32 {
        tcp.push_str(&format!(
            "{i:4}: 0100007F:2253 0100007F:{:04X} 01 00000000:00000000 00:00000000 00000000 0 0 {} 1\n",
            1024 + i % 60_000,
            10_000 + i
        ));
    }
    let dir = proc_root(&tcp, Some(HEADER));
    for format in ["table", "json"] {
        let script = format!(
            "set -o pipefail; '{}' sockets --source procfs --format {format} | head -1 >/dev/null",
            env!("CARGO_BIN_EXE_webui-doctor")
        );
        let out = Command::new("bash").args(["-c", &script]).env("PROC_ROOT", dir.path()).output().unwrap();
        assert!(out.status.success(), "{format}: {:?} {}", out.status, stderr(&out));
        assert!(out.stderr.is_empty(), "{format}: {}", stderr(&out));
    }
}

/// `--summary` keeps naming the source, in both formats.
#[test]
fn summary_outputs_name_the_source() {
    let dir = proc_root(&format!("{HEADER}{GOOD}"), Some(HEADER));
    let out = cmd()
        .env("PROC_ROOT", dir.path())
        .args(["sockets", "--source", "procfs", "--summary", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "procfs");
    assert_eq!(v["summary"]["by_state"]["listening"], 1);
    assert!(v.get("sockets").is_none());
    let out = cmd().env("PROC_ROOT", dir.path()).args(["sockets", "--source", "procfs", "--summary"]).output().unwrap();
    assert!(stdout(&out).starts_with("source: procfs, taken at "), "{}", stdout(&out));
}
