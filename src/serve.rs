//! `webui-doctor serve`: the glue between the server crate, which knows HTTP and socket options,
//! and this crate, which knows how to read sockets. The server calls these on its blocking pool.

use std::sync::{Arc, Mutex, OnceLock};

use webui_doctor_server::dashboard::{ProviderError, SnapshotProvider};

use crate::analysis::{Report, Summary, by_urgency, listening_owners};
use crate::filter::{self, Filter};
use crate::model::{EndedFeed, ProcPaths, Socket, Source, TcpState};
use crate::query::{Query, collect, facts, listening_ports};
use crate::{events, render};

pub struct Provider {
    source: Source,
    paths: ProcPaths,
    /// Whether `/api/snapshot?processes=1` may name owners (`--allow-processes`).
    allow_processes: bool,
    /// Most sockets in one SSE event (`--max-rows`).
    max_rows: usize,
    /// The ports the SSE stream and the dashboard follow; set once the server knows its own port.
    watch_ports: OnceLock<Vec<u16>>,
    /// What ended on the watched ports, kept by a thread subscribed to the kernel's notices.
    ended: Arc<Mutex<EndedFeed>>,
}

impl Provider {
    pub fn new(source: Source, paths: ProcPaths, allow_processes: bool, max_rows: usize) -> Provider {
        Provider { source, paths, allow_processes, max_rows, watch_ports: OnceLock::new(), ended: Arc::default() }
    }

    /// Sets the watched ports (once; later calls are ignored), and starts counting the ends of
    /// their connections (server side: local port watched) from the kernel's destroy notices.
    pub fn watch(&self, ports: Vec<u16>) {
        if self.watch_ports.set(ports.clone()).is_err() {
            return;
        }
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = EndedFeed::new(&ports);
        let feed = Arc::clone(&self.ended);
        let filter = Filter { ports, ..Filter::default() };
        // Runs for the life of the process; a refused subscription is reported in the feed.
        let spawned = std::thread::Builder::new().name("ended".into()).spawn(move || {
            let result = events::run(
                &filter,
                events::Limits::default(),
                || false,
                |event| {
                    let mut feed = feed.lock().unwrap_or_else(|p| p.into_inner());
                    match event {
                        events::Event::Ended(e) => feed.add(e),
                        events::Event::Malformed(n) => feed.malformed = n,
                        events::Event::Overrun(_) => {}
                    }
                    Ok(())
                },
            );
            if let Err(e) = result {
                feed.lock().unwrap_or_else(|p| p.into_inner()).error = Some(crate::error::chain(&e));
            }
        });
        if let Err(e) = spawned {
            self.ended.lock().unwrap_or_else(|p| p.into_inner()).error =
                Some(format!("starting the events thread: {e}"));
        }
    }

    fn ended(&self) -> EndedFeed {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn query(&self, filter: Filter) -> Query {
        Query::new(self.source, filter, self.paths.clone())
    }
}

/// An internal error with its whole cause chain (`{e:#}` on a thiserror type shows only the top).
fn internal(e: impl std::error::Error) -> ProviderError {
    ProviderError::Internal(crate::error::chain(&e))
}

/// One read for `query`, judged, and handed to `render` (a JSON encoder).
fn rendered(
    query: &Query,
    render: impl FnOnce(&Report) -> serde_json::Result<String>,
) -> Result<String, ProviderError> {
    let (snapshot, attribution) = collect(query).map_err(internal)?;
    let facts = facts(query, &snapshot).map_err(internal)?;
    render(&Report::new(&snapshot, &query.filter, None, attribution, &facts)).map_err(internal)
}

impl SnapshotProvider for Provider {
    /// `/api/snapshot`: the filters as query parameters, and `limit`/`offset` for one page of the
    /// sockets in urgency order (CLOSE-WAIT first; see `analysis::by_urgency`).
    fn snapshot(&self, params: &[(String, String)]) -> Result<String, ProviderError> {
        type Params = Vec<(String, String)>;
        let (paging, filters): (Params, Params) =
            params.iter().cloned().partition(|(k, _)| k == "limit" || k == "offset");
        let mut limit = None;
        let mut offset = 0usize;
        for (key, value) in &paging {
            let n: usize =
                value.parse().map_err(|_| ProviderError::BadRequest(format!("{key}: '{value}' is not a count")))?;
            if key == "limit" { limit = Some(n) } else { offset = n }
        }
        let (filter, processes) = filter::from_query(&filters).map_err(ProviderError::BadRequest)?;
        if (processes || filter.wants_processes()) && !self.allow_processes {
            return Err(ProviderError::Forbidden(
                "process owners are not served over HTTP unless the server was started with --allow-processes".into(),
            ));
        }
        let mut query = self.query(filter);
        query.processes = processes;
        query.extras.cgroup = true;
        if paging.is_empty() {
            return rendered(&query, render::json::to_compact);
        }
        rendered(&query, |report| {
            let ordered = by_urgency(&report.snapshot.sockets);
            let total = ordered.len();
            let limit = limit.unwrap_or(total);
            let page: Vec<&Socket> = ordered.into_iter().skip(offset).take(limit).collect();
            render::json::to_compact_page(report, &page, render::json::Page { offset, limit, total })
        })
    }

    /// The SSE document: summary, findings and ended feed of every watched socket, and the most
    /// urgent `--max-rows` of them as rows, within one 64 KiB event.
    fn watched(&self) -> Result<String, ProviderError> {
        let query =
            self.query(Filter { ports: self.watch_ports.get().cloned().unwrap_or_default(), ..Filter::default() });
        let ended = self.ended();
        let budget = render::json::STREAM_EVENT_BYTES - render::json::STREAM_FRAMING;
        rendered(&query, |report| render::json::to_stream(report, &ended, self.max_rows, budget))
    }

    /// The socket gauges; with `--allow-processes` also the open files and limit of each
    /// process listening on a watched port (a few series, whatever the number of clients).
    fn metrics(&self) -> Result<String, ProviderError> {
        let mut query = self.query(Filter::default());
        query.processes = self.allow_processes;
        let (snapshot, _) = collect(&query).map_err(internal)?;
        let listening = listening_ports(&query, &snapshot.sockets).map_err(internal)?;
        let mut metrics =
            render::prometheus::SocketMetrics::new(Summary::by_port(&snapshot.sockets, &listening), snapshot.source);
        let watched = self.watch_ports.get().cloned().unwrap_or_default();
        let servers: Vec<Socket> = snapshot
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::Listening && watched.contains(&s.local.port()))
            .cloned()
            .collect();
        metrics.processes = listening_owners(&servers, &snapshot.processes);
        let ended = self.ended();
        metrics.ended = Some(ended.totals);
        metrics.events_malformed = Some(ended.malformed);
        let mut out = Vec::new();
        render::prometheus::write(&mut out, metrics).map_err(internal)?;
        String::from_utf8(out).map_err(internal)
    }
}
