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
