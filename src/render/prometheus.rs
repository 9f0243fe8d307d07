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
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::analysis::Summary;
use crate::model::{ProcessStats, Source, TcpState};
use crate::render::Clean;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CgroupStateLabels {
    state: &'static str,
    port: String,
    cgroup: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndedLabels {
    port: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    pid: String,
    comm: String,
}

/// The socket gauges of one snapshot, ready to encode: one summary per `port` label value
/// (built by [`Summary::by_port`]).
#[derive(Debug, Clone)]
pub struct SocketMetrics {
    /// The state counts per `port` label value (`""` for every socket not on a listening port).
    pub by_port: BTreeMap<String, Summary>,
    /// Where the sockets were read.
    pub source: Source,
    /// Opt-in (`--by cgroup`): the state counts split by cgroup as well, as
    /// `webui_doctor_tcp_sockets{state,port,cgroup}` instead of the plain gauge. One series per
    /// cgroup holding sockets: bounded by the host's cgroups, so only when asked for.
    pub by_cgroup: Option<BTreeMap<(String, String), Summary>>,
    /// The processes owning a listening socket (the servers; with `-p`): their open files and
    /// limit. Bounded by the number of server processes, never one series per client.
    pub processes: Vec<ProcessStats>,
    /// `serve`: ends seen on its watched ports, by port and cause (4 series per watched port).
    pub ended: Option<BTreeMap<u16, BTreeMap<&'static str, u64>>>,
    /// `serve`: kernel end notifications that could not be decoded and were skipped.
    pub events_malformed: Option<u64>,
}

impl SocketMetrics {
    /// Gauges for these counts, with no per-cgroup or per-process series.
    pub fn new(by_port: BTreeMap<String, Summary>, source: Source) -> SocketMetrics {
        SocketMetrics { by_port, source, by_cgroup: None, processes: Vec::new(), ended: None, events_malformed: None }
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
        match &self.by_cgroup {
            None => {
                for (port, counts) in &self.by_port {
                    for state in TcpState::ALL {
                        let labels = StateLabels { state: state.prometheus_label(), port: port.clone() };
                        let value = ConstGauge::new(gauge_value(counts.by_state.get(state)));
                        value.encode(metric.encode_family(&labels)?)?;
                    }
                }
            }
            Some(by_cgroup) => {
                for ((port, cgroup), counts) in by_cgroup {
                    for state in TcpState::ALL {
                        let labels = CgroupStateLabels {
                            state: state.prometheus_label(),
                            port: port.clone(),
                            cgroup: Clean(cgroup).to_string(),
                        };
                        let value = ConstGauge::new(gauge_value(counts.by_state.get(state)));
                        value.encode(metric.encode_family(&labels)?)?;
                    }
                }
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
            "webui_doctor_tcp_queued",
            "Of webui_doctor_tcp_sockets: connections waiting in a listen queue, accepted by no process yet",
            None,
            gauge,
        )?;
        for (port, counts) in self.by_port.iter().filter(|(port, _)| !port.is_empty()) {
            for (state, n) in
                [(TcpState::Established, counts.queued.established), (TcpState::CloseWait, counts.queued.close_wait)]
            {
                let labels = StateLabels { state: state.prometheus_label(), port: port.clone() };
                ConstGauge::new(gauge_value(n)).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_source_info",
            "Where the socket counts were read: netlink or procfs",
            None,
            gauge,
        )?;
        ConstGauge::new(1i64).encode(metric.encode_family(&SourceLabels { source: self.source.name() })?)?;
        if let Some(ended) = &self.ended {
            let counter = ConstCounter::new(0u64).metric_type();
            let mut metric = encoder.encode_descriptor(
                "webui_doctor_tcp_ended",
                "TCP connections on a watched port that ended, by the cause their final tcp_info shows",
                None,
                counter,
            )?;
            for (port, causes) in ended {
                for (cause, n) in causes {
                    let labels = EndedLabels { port: port.to_string(), cause };
                    ConstCounter::new(*n).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        if let Some(n) = self.events_malformed {
            let counter = ConstCounter::new(0u64).metric_type();
            let metric = encoder.encode_descriptor(
                "webui_doctor_events_malformed",
                "Kernel socket-end notifications that could not be decoded and were skipped",
                None,
                counter,
            )?;
            ConstCounter::new(n).encode(metric)?;
        }
        if self.processes.is_empty() {
            return Ok(());
        }
        let labels = |p: &ProcessStats| ProcessLabels { pid: p.pid.to_string(), comm: Clean(&p.comm).to_string() };
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_process_open_files",
            "Open files of a process that owns a listening TCP socket",
            None,
            gauge,
        )?;
        for p in &self.processes {
            ConstGauge::new(gauge_value(p.open_files)).encode(metric.encode_family(&labels(p))?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "webui_doctor_process_open_files_limit",
            "Soft RLIMIT_NOFILE of a process that owns a listening TCP socket (absent when unlimited)",
            None,
            gauge,
        )?;
        for p in &self.processes {
            if let Some(limit) = p.file_limit {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                ConstGauge::new(limit).encode(metric.encode_family(&labels(p))?)?;
            }
        }
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

/// Writes the gauges in the Prometheus text format.
pub fn write(out: &mut impl Write, metrics: SocketMetrics) -> io::Result<()> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics));
    out.write_all(encode(&registry)?.as_bytes())
}
