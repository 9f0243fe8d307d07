//! `webui-doctor serve`: the glue between the server crate, which knows HTTP and socket options,
//! and this crate, which knows how to read sockets. The server calls these on its blocking pool.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use webui_doctor_server::{ProviderError, SnapshotProvider};

use crate::filter::{self, Filter};
use crate::render::{self, Report};
use crate::source::SourceChoice;
use crate::{Query, collect};

pub struct Provider {
    source: SourceChoice,
    /// The ports the SSE stream and the dashboard follow; set once the server knows its own port.
    watch_ports: OnceLock<Vec<u16>>,
}

impl Provider {
    pub fn new(source: SourceChoice) -> Provider {
        Provider { source, watch_ports: OnceLock::new() }
    }

    /// Sets the watched ports (once; later calls are ignored).
    pub fn watch(&self, ports: Vec<u16>) {
        let _ = self.watch_ports.set(ports);
    }
}

fn internal(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Internal(format!("{e:#}"))
}

fn json(query: &Query) -> Result<String, ProviderError> {
    let (snapshot, attribution) = collect(query).map_err(internal)?;
    render::json::to_compact(&Report::new(&snapshot, &query.filter, None, attribution)).map_err(internal)
}

impl SnapshotProvider for Provider {
    fn snapshot(&self, params: &[(String, String)]) -> Result<String, ProviderError> {
        let (filter, processes) = filter::from_query(params).map_err(ProviderError::BadRequest)?;
        json(&Query { source: self.source, filter, processes, sockopts: false })
    }

    fn watched(&self) -> Result<String, ProviderError> {
        let filter = Filter { ports: self.watch_ports.get().cloned().unwrap_or_default(), ..Filter::default() };
        json(&Query { source: self.source, filter, processes: false, sockopts: false })
    }

    fn metrics(&self) -> Result<String, ProviderError> {
        let query = Query { source: self.source, filter: Filter::default(), processes: false, sockopts: false };
        let (snapshot, _) = collect(&query).map_err(internal)?;
        let listening: BTreeSet<u16> = crate::listening_ports(&query, &snapshot.sockets).map_err(internal)?;
        let metrics = render::prometheus::SocketMetrics::new(&snapshot.sockets, snapshot.source, &listening);
        let mut out = Vec::new();
        render::prometheus::write(&mut out, metrics).map_err(internal)?;
        String::from_utf8(out).map_err(internal)
    }
}
