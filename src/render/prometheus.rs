//! `--format prometheus`: Prometheus text exposition (0.0.4), for node_exporter's textfile
//! collector and for `serve`'s `/metrics`. Encoded by prometheus-client so names, escaping and
//! `# HELP`/`# TYPE` lines follow the format exactly; a `Collector` keeps the series in a stable
//! order (empty port first, then ports ascending; states in kernel order).
//!
//! Cardinality stays bounded: `port` is a socket's local port only where a listening socket holds
//! that port (the server side); every other socket counts under `port=""`. Summed over `port`, the
//! state counts equal node_exporter's `node_tcp_connection_states`, whose label values we share.

use std::collections::BTreeMap;
use std::io::{self, Write};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::analysis::Summary;
use crate::model::{Source, TcpState};

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

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

/// The socket gauges of one snapshot, ready to encode: one summary per `port` label value
/// (built by [`Summary::by_port`]).
#[derive(Debug, Clone)]
pub struct SocketMetrics {
    pub by_port: BTreeMap<String, Summary>,
    pub source: Source,
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
                ConstGauge::new(gauge_value(counts.by_state.get(state))).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_tcp_keepalive_armed",
            "Established TCP sockets whose keepalive timer is armed",
            None,
            gauge,
        )?;
        for (port, counts) in &self.by_port {
            let armed = gauge_value(counts.keepalive.armed);
            ConstGauge::new(armed).encode(metric.encode_family(&PortLabels { port: port.clone() })?)?;
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
