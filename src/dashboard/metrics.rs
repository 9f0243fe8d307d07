//! The server's own counters, exposed on `/metrics` after the socket gauges the provider renders.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use webui_doctor_server::Watchdog;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OptionLabel {
    pub option: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabel {
    pub reason: &'static str,
}

/// The server's own counters and gauges. Cheap to clone: every field is a shared atomic.
#[derive(Clone)]
pub struct ServerMetrics {
    pub accepted: Counter,
    pub open: Gauge,
    pub rejected: Family<RejectLabel, Counter>,
    pub refused: Family<RefusedLabel, Counter>,
    pub sse_clients: Gauge,
    pub option_failures: Family<OptionLabel, Counter>,
    pub peers_timed_out: Counter,
    pub watchdog_ended: WatchdogEnded,
}

/// The watchdog's own count (the server crate keeps it as a plain number), read at each scrape.
#[derive(Clone, Debug, Default)]
pub struct WatchdogEnded(Option<Watchdog>);

impl TypedMetric for WatchdogEnded {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for WatchdogEnded {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.0.as_ref().map_or(0, Watchdog::ended), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl ServerMetrics {
    /// Every label value is created up front, so each series exists (at 0) from the first scrape.
    pub fn new(watchdog: Option<Watchdog>) -> ServerMetrics {
        let m = ServerMetrics {
            accepted: Counter::default(),
            open: Gauge::default(),
            rejected: Family::default(),
            refused: Family::default(),
            sse_clients: Gauge::default(),
            option_failures: Family::default(),
            peers_timed_out: Counter::default(),
            watchdog_ended: WatchdogEnded(watchdog),
        };
        for reason in
            ["max_connections", "max_connections_per_ip", "max_sse_clients", "busy", "unauthenticated_evicted"]
        {
            let _ = m.rejected.get_or_create(&RejectLabel { reason }).get();
        }
        for reason in [
            "host",
            "cross_site",
            "body_timeout",
            "body_too_large",
            "login_failed",
            "login_rate_limited",
            "duplicate_host",
        ] {
            let _ = m.refused.get_or_create(&RefusedLabel { reason }).get();
        }
        for option in webui_doctor_server::tuning::SocketOption::ALL {
            let _ = m.option_failures.get_or_create(&OptionLabel { option: option.name() }).get();
        }
        m
    }

    /// Every series, for the text encoder.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("webui_doctor_server");
        r.register("connections_accepted", "TCP connections accepted", self.accepted.clone());
        r.register("connections_open", "TCP connections open now", self.open.clone());
        r.register(
            "requests_rejected",
            "Connections, SSE streams or socket reads refused with 503 because a cap was reached",
            self.rejected.clone(),
        );
        r.register(
            "requests_refused",
            "Requests refused: a Host this server does not serve, a cross-site request, a slow or large body",
            self.refused.clone(),
        );
        r.register("sse_clients", "Open /api/events streams", self.sse_clients.clone());
        r.register(
            "keepalive_option_failures",
            "Socket options that could not be set on an accepted connection",
            self.option_failures.clone(),
        );
        r.register(
            "watchdog_ended",
            "Connections the write-progress watchdog ended: written bytes unacknowledged past its deadline",
            self.watchdog_ended.clone(),
        );
        r.register(
            "peers_timed_out",
            "Connections the kernel dropped because the peer stopped answering (keepalive or user timeout)",
            self.peers_timed_out.clone(),
        );
        r
    }
}
