//! The `webui-doctor` binary: parse arguments, call the library, map the outcome to an exit code
//! (0 ok, 1 gate breached, 2 error). Errors print as one line on stderr.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use webui_doctor::analysis::Summary;
use webui_doctor::cli::{CheckArgs, CheckFormat, Cli, Command, Selection, SocketsArgs, SocketsFormat, SourceArg};
use webui_doctor::exit_codes::{self, BREACHED, ERROR, OK};
use webui_doctor::filter::{Filter, parse_state_filter};
use webui_doctor::gate::Gate;
use webui_doctor::model::{StateSet, TcpState};
use webui_doctor::render::{self, Report, table::Style};
use webui_doctor::source::SourceChoice;
use webui_doctor::{Query, collect, netns};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => exit_codes::code(code),
        Err(err) if is_broken_pipe(&err) => exit_codes::code(OK),
        Err(err) => {
            eprintln!("webui-doctor: {err:#}");
            exit_codes::code(ERROR)
        }
    }
}

/// `webui-doctor sockets | head` closes our stdout early; that is the reader's choice, not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|e| e.downcast_ref::<io::Error>()).any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Sockets(args) => sockets(args),
        Command::Check(args) => check(args),
    }
}

fn query(sel: &Selection) -> anyhow::Result<Query> {
    let mut states = StateSet::EMPTY;
    for s in &sel.states {
        states = states.union(parse_state_filter(&s.name()).map_err(anyhow::Error::msg)?);
    }
    if sel.states.is_empty() {
        states = StateSet::all();
    }
    let filter = Filter {
        states,
        inet: !sel.ipv6,
        inet6: !sel.ipv4,
        ports: sel.ports.clone(),
        sport: sel.sport,
        dport: sel.dport,
        pid: sel.pid,
        process: sel.process.clone(),
    };
    let source = match sel.source {
        SourceArg::Auto => SourceChoice::Auto,
        SourceArg::Netlink => SourceChoice::Netlink,
        SourceArg::Procfs => SourceChoice::Procfs,
    };
    if let Some(name) = &sel.netns {
        netns::enter(name)?;
    }
    Ok(Query { source, filter, processes: sel.processes })
}

fn sockets(args: SocketsArgs) -> anyhow::Result<u8> {
    let q = query(&args.selection)?;
    let (snapshot, attribution) = collect(&q)?;
    let report = Report {
        summary: Summary::of(&snapshot.sockets),
        snapshot: &snapshot,
        filter: &q.filter,
        netns: args.selection.netns.as_deref(),
        attribution,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match (args.format, args.summary) {
        (SocketsFormat::Table, true) => render::table::write_summary(&mut out, &report)?,
        (SocketsFormat::Table, false) => {
            render::table::write(&mut out, &report, Style::detect(), q.processes || q.filter.wants_processes())?
        }
        (SocketsFormat::Json, true) => render::json::write_summary(&mut out, &report)?,
        (SocketsFormat::Json, false) => render::json::write(&mut out, &report)?,
        (SocketsFormat::Prometheus, _) => {
            let listening = listening_ports(&q, &report)?;
            let metrics = render::prometheus::SocketMetrics::new(&snapshot.sockets, snapshot.source, &listening);
            render::prometheus::write(&mut out, metrics)?;
        }
    }
    out.flush()?;
    Ok(OK)
}

/// The ports that carry a `port` label: from the snapshot when it holds the listening sockets,
/// else from a second, LISTEN-only read with the same filter.
fn listening_ports(q: &Query, report: &Report) -> anyhow::Result<std::collections::BTreeSet<u16>> {
    if q.filter.states.contains(TcpState::Listening) {
        return Ok(render::prometheus::listening_ports(&report.snapshot.sockets));
    }
    let mut listen = q.clone();
    listen.filter.states = StateSet::of(&[TcpState::Listening]);
    listen.processes = false;
    listen.filter.pid = None;
    listen.filter.process = None;
    let (snapshot, _) = collect(&listen).context("reading listening sockets for the port label")?;
    Ok(render::prometheus::listening_ports(&snapshot.sockets))
}

fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let q = query(&args.selection)?;
    let (snapshot, attribution) = collect(&q)?;
    let report = Report {
        summary: Summary::of(&snapshot.sockets),
        snapshot: &snapshot,
        filter: &q.filter,
        netns: args.selection.netns.as_deref(),
        attribution,
    };
    let gate = Gate { max_close_wait: args.max_close_wait, require_keepalive: args.require_keepalive };
    let results = gate.evaluate(&report.summary);
    let ok = results.iter().all(|r| r.ok);
    for r in results.iter().filter(|r| !r.ok) {
        eprintln!("webui-doctor: check failed: {}", r.message);
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        CheckFormat::Text => {
            for r in &results {
                writeln!(out, "{} {}: {}", if r.ok { "ok  " } else { "FAIL" }, r.rule, r.message)?;
            }
            writeln!(out, "source: {}, {} sockets checked", report.snapshot.source.name(), report.summary.total)?;
        }
        CheckFormat::Json => render::json::write_check(&mut out, &report, &results)?,
    }
    out.flush()?;
    Ok(if ok { OK } else { BREACHED })
}
