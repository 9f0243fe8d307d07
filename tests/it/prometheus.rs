//! `--format prometheus`: valid exposition (checked by Prometheus's own `promtool`), the state
//! label values node_exporter uses, and the `port` label only on a listening port.

use std::collections::HashMap;

use crate::util::*;

/// `name{labels} value` lines -> value, keyed by the text before the value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn exposition_is_valid_and_labels_the_server_port() {
    let f = Fixture::new(false);
    let port = f.port;
    for source in ["netlink", "procfs"] {
        let out = run(&["sockets", "--source", source, "--format", "prometheus"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        if require(have_promtool(), "promtool (Debian package prometheus)") {
            promtool_check(&text);
        }
        let s = samples(&text);
        let get = |series: String| *s.get(&series).unwrap_or_else(|| panic!("{series} missing in\n{text}"));
        assert_eq!(get(format!("webui_doctor_tcp_sockets{{state=\"listen\",port=\"{port}\"}}")), 1.0);
        assert_eq!(get(format!("webui_doctor_tcp_sockets{{state=\"established\",port=\"{port}\"}}")), 2.0);
        assert_eq!(get(format!("webui_doctor_tcp_sockets{{state=\"close_wait\",port=\"{port}\"}}")), 1.0);
        assert_eq!(get(format!("webui_doctor_tcp_keepalive_armed{{port=\"{port}\"}}")), 1.0);
        assert_eq!(get(format!("webui_doctor_source_info{{source=\"{source}\"}}")), 1.0);
        // The client sides (ephemeral ports) are not labelled with their own port.
        let client_port = f.plain.client.local_addr().unwrap().port();
        assert!(!text.contains(&format!("port=\"{client_port}\"")));
    }

    // Without listening sockets in the selection, the label still comes from the listener.
    let out = run(&["sockets", "--state", "close-wait", "--format", "prometheus"]);
    let s = samples(&stdout(&out));
    assert_eq!(s[&format!("webui_doctor_tcp_sockets{{state=\"close_wait\",port=\"{port}\"}}")], 1.0);
    assert_eq!(s[&format!("webui_doctor_tcp_sockets{{state=\"listen\",port=\"{port}\"}}")], 0.0);
}

/// `-p` adds the open files and limit of each process owning a listening socket, nobody else;
/// `--by cgroup` adds the `cgroup` label, and the counts still add up to the plain gauge's.
#[test]
fn process_files_for_servers_only_and_cgroup_label_on_request() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let pid = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap().trim_end().to_owned();
    let labels = format!("{{pid=\"{pid}\",comm=\"{comm}\"}}");
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count() as f64;
    // Other tests in this process open and close files meanwhile: the count is compared on a
    // read during which this process's count stayed within the slack (a few tries at most).
    let (text, open, now) = (0..10)
        .map(|_| {
            let before = fds();
            let text = stdout(&run(&["sockets", "-p", "--port", &port, "--format", "prometheus"]));
            let open = samples(&text)[&format!("webui_doctor_process_open_files{labels}")];
            (text, open, before, fds())
        })
        .find(|(_, _, before, after)| (before - after).abs() <= 2.0)
        .map(|(text, open, _, after)| (text, open, after))
        .expect("this process's open files never held still");
    if require(have_promtool(), "promtool (Debian package prometheus)") {
        promtool_check(&text);
    }
    let s = samples(&text);
    assert!((open - now).abs() <= 8.0, "open files {open}, /proc/self/fd now {now}");
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s[&format!("webui_doctor_process_open_files_limit{labels}")], soft);
    let processes = s.keys().filter(|k| k.starts_with("webui_doctor_process_open_files{")).count();
    assert_eq!(processes, 1, "only the listener's owner: {text}");
    // Only sockets that are clients (no listener in the selection): no process series.
    let client = f.plain.client.local_addr().unwrap().port().to_string();
    let text = stdout(&run(&["sockets", "-p", "--sport", &client, "--format", "prometheus"]));
    assert!(!text.contains("webui_doctor_process_open_files{"), "{text}");
    // Without -p, none.
    let text = stdout(&run(&["sockets", "--port", &port, "--format", "prometheus"]));
    assert!(!text.contains("webui_doctor_process_open_files"), "{text}");

    let text = stdout(&run(&["sockets", "--by", "cgroup", "--port", &port, "--format", "prometheus"]));
    if require(have_promtool(), "promtool (Debian package prometheus)") {
        promtool_check(&text);
    }
    let with_cgroup: f64 = samples(&text)
        .iter()
        .filter(|(k, _)| k.starts_with("webui_doctor_tcp_sockets{state=\"established\"") && k.contains("cgroup=\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(with_cgroup, 2.0, "the two server ends: {text}");
    assert!(!text.contains(&format!("webui_doctor_tcp_sockets{{state=\"established\",port=\"{port}\"}}")));
}
