//! `--format prometheus`: Prometheus text exposition (0.0.4), for node_exporter's textfile
//! collector and for `serve`'s `/metrics`. Encoded by prometheus-client so names, escaping and
//! `# HELP`/`# TYPE` lines follow the format exactly; a `Collector` keeps the series in a stable
//! order (empty port first, then ports ascending; states in kernel order).
//!
//! Cardinality stays bounded: `port` is a socket's local port only where a listening socket holds
//! that port (the server side); every other socket counts under `port=""`. Summed over `port`, the
//! state counts equal node_exporter's `node_tcp_connection_states`, whose label values we share.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::model::{Socket, SourceKind, TcpState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
    port: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    port: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// The ports that have a listening socket: the only values the `port` label takes besides "".
pub fn listening_ports(sockets: &[Socket]) -> BTreeSet<u16> {
    sockets.iter().filter(|s| s.state == TcpState::Listening).map(|s| s.local.port()).collect()
}

#[derive(Debug, Default, Clone, Copy)]
struct PortCounts {
    states: [i64; 11],
    armed: i64,
}

/// The socket gauges of one snapshot, ready to encode.
#[derive(Debug, Clone)]
pub struct SocketMetrics {
    by_port: BTreeMap<String, PortCounts>,
    source: SourceKind,
}

impl SocketMetrics {
    pub fn new(sockets: &[Socket], source: SourceKind, listening: &BTreeSet<u16>) -> SocketMetrics {
        // Every state for every label port is written, zeros included, so an alert on
        // `close_wait > 0` sees an explicit 0 rather than an absent series.
        let mut by_port: BTreeMap<String, PortCounts> = std::iter::once(String::new())
            .chain(listening.iter().map(u16::to_string))
            .map(|p| (p, PortCounts::default()))
            .collect();
        for s in sockets {
            let port = if listening.contains(&s.local.port()) { s.local.port().to_string() } else { String::new() };
            let counts = by_port.entry(port).or_default();
            counts.states[usize::from(s.state.code() - 1)] += 1;
            if s.state == TcpState::Established && s.keepalive_armed() {
                counts.armed += 1;
            }
        }
        SocketMetrics { by_port, source }
    }
}

impl Collector for SocketMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(0i64).metric_type();
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_tcp_sockets",
            "TCP sockets by state; port is the local port where it has a listening socket, else empty",
            None,
            gauge,
        )?;
        for (port, counts) in &self.by_port {
            for state in TcpState::ALL {
                let labels = StateLabels { state: state.prometheus_label(), port: port.clone() };
                ConstGauge::new(counts.states[usize::from(state.code() - 1)]).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_tcp_keepalive_armed",
            "Established TCP sockets whose keepalive timer is armed",
            None,
            gauge,
        )?;
        for (port, counts) in &self.by_port {
            ConstGauge::new(counts.armed).encode(metric.encode_family(&PortLabels { port: port.clone() })?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_source_info",
            "Where the socket counts were read: netlink or procfs",
            None,
            gauge,
        )?;
        ConstGauge::new(1i64).encode(metric.encode_family(&SourceLabels { source: self.source.name() })?)?;
        Ok(())
    }
}

/// Encodes a registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> io::Result<String> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)
        .map_err(|_| io::Error::other("encoding Prometheus text failed"))?;
    Ok(text)
}

pub fn write(out: &mut impl Write, metrics: SocketMetrics) -> io::Result<()> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics));
    out.write_all(encode(&registry)?.as_bytes())
}
