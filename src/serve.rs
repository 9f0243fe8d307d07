//! `webui-doctor serve`: the glue between the server crate, which knows HTTP and socket options,
//! and this crate, which knows how to read sockets. The server calls these on its blocking pool.

use std::sync::{Arc, Mutex, OnceLock};

use crate::dashboard::{ProviderError, SnapshotProvider};

use crate::analysis::{ByPort, Report, Summary, Urgent, by_urgency};
use crate::diagnose::Diagnosis;
use crate::filter::{Filter, parse_state_filter};
use crate::model::StateSet;
use crate::model::{EndedFeed, ProcPaths, Socket, Source};
use crate::query::{Query, collect, count, facts};
use crate::{events, render};

/// `serve`'s data: the library's reads, rendered as the dashboard asks.
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
    /// A provider reading `source` under `paths`; owners only with `allow_processes`; at most `max_rows` rows per document.
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
        let (filter, processes) = from_query(&filters).map_err(ProviderError::BadRequest)?;
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
    /// urgent `--max-rows` of them as rows, within one 64 KiB event. Counted as the sockets come:
    /// `--max-rows` sockets are kept, whatever the number watched.
    fn watched(&self) -> Result<String, ProviderError> {
        let query =
            self.query(Filter { ports: self.watch_ports.get().cloned().unwrap_or_default(), ..Filter::default() });
        let ended = self.ended();
        let budget = render::json::STREAM_EVENT_BYTES - render::json::STREAM_FRAMING;
        let max_rows = self.max_rows;
        let counted = count(&query, |facts| (Summary::default(), Diagnosis::new(facts), Urgent::new(max_rows)))
            .map_err(internal)?;
        let (summary, diagnosis, urgent) = counted.tally;
        let findings = diagnosis.findings(&counted.facts);
        let report = Report::counted(&counted.snapshot, &query.filter, None, counted.attribution, summary, findings);
        let total = urgent.seen();
        render::json::to_stream(&report, &ended, (&urgent.sockets(), total), max_rows, budget).map_err(internal)
    }

    /// The socket gauges; with `--allow-processes` also the open files and limit of each
    /// process listening on a watched port (a few series, whatever the number of clients).
    /// Counted as the sockets come, none kept.
    fn metrics(&self) -> Result<String, ProviderError> {
        let mut query = self.query(Filter::default());
        query.processes = self.allow_processes;
        let counted = count(&query, |facts| ByPort::new(facts.listening.clone(), false)).map_err(internal)?;
        let watched = self.watch_ports.get().cloned().unwrap_or_default();
        let processes = counted.tally.listening_owners(&counted.snapshot.processes, Some(&watched));
        let mut metrics = render::prometheus::SocketMetrics::new(counted.tally.ports, counted.snapshot.source);
        metrics.processes = processes;
        let ended = self.ended();
        metrics.ended = Some(ended.totals);
        metrics.events_malformed = Some(ended.malformed);
        let mut out = Vec::new();
        render::prometheus::write(&mut out, metrics).map_err(internal)?;
        String::from_utf8(out).map_err(internal)
    }
}

/// A filter from URL query parameters (`/api/snapshot?state=close-wait&port=8787`): the same
/// names and values as the command line. Returns the filter and whether owners were asked for
/// (`processes=1`). Unknown parameters are errors, not ignored, so a typo never widens a query.
pub fn from_query(params: &[(String, String)]) -> Result<(Filter, bool), String> {
    let mut f = Filter::default();
    let mut states = StateSet::EMPTY;
    let mut processes = false;
    for (key, value) in params {
        match key.as_str() {
            "state" => states = states.union(parse_state_filter(value)?),
            "port" => f.ports.push(value.parse().map_err(|_| format!("port: '{value}' is not a port (0-65535)"))?),
            "sport" => f.sport = Some(value.parse().map_err(|e| format!("sport: {e}"))?),
            "dport" => f.dport = Some(value.parse().map_err(|e| format!("dport: {e}"))?),
            "family" => match value.as_str() {
                "inet" | "4" => (f.inet, f.inet6) = (true, false),
                "inet6" | "6" => (f.inet, f.inet6) = (false, true),
                _ => return Err(format!("family: '{value}' is not inet or inet6")),
            },
            "processes" => {
                processes = match value.as_str() {
                    "1" | "true" | "" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("processes: '{value}' is not 1 or 0")),
                }
            }
            "pid" => f.pid = Some(value.parse().map_err(|_| format!("pid: '{value}' is not a process id"))?),
            "process" => f.process = Some(value.clone()),
            _ => {
                return Err(format!(
                    "unknown parameter '{key}': expected state, port, sport, dport, family, processes, pid or process"
                ));
            }
        }
    }
    if !states.is_empty() {
        f.states = states;
    }
    Ok((f, processes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::PortRange;
    use crate::model::TcpState;

    #[test]
    fn query_parameters_map_to_filters() {
        let q = |pairs: &[(&str, &str)]| {
            from_query(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>())
        };
        let (f, p) = q(&[("state", "close-wait"), ("state", "bucket"), ("port", "8787"), ("family", "6")]).unwrap();
        assert_eq!(f.states, StateSet::of(&[TcpState::SynRecv, TcpState::TimeWait, TcpState::CloseWait]));
        assert_eq!(f.ports, vec![8787]);
        assert!(!f.inet && f.inet6 && !p);
        let (f, p) = q(&[("processes", "1"), ("sport", "1000-2000")]).unwrap();
        assert!(p);
        assert_eq!(f.states, StateSet::all());
        assert_eq!(f.sport, Some(PortRange { low: 1000, high: 2000 }));
        for bad in
            [("state", "nope"), ("port", "x"), ("porrt", "1"), ("family", "ipx"), ("pid", "-1"), ("processes", "yes")]
        {
            assert!(q(&[bad]).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any query parameters: a filter or a message, never a panic.
        #[test]
        fn any_query_parses_or_fails_cleanly(pairs in proptest::collection::vec((".{0,12}", ".{0,24}"), 0..8)) {
            let pairs: Vec<(String, String)> = pairs;
            if let Err(msg) = from_query(&pairs) {
                prop_assert!(!msg.is_empty());
            }
        }
    }
}
