//! The `webui-doctor` binary: parse arguments, call the library, map the outcome to an exit code
//! (0 ok, 1 gate breached, 2 error). Errors print as one line on stderr.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use webui_doctor::cli::{
    CheckArgs, CheckFormat, Cli, Command, Selection, ServeArgs, SocketsArgs, SocketsFormat, SourceArg,
};
use webui_doctor::exit_codes::{self, BREACHED, ERROR, OK};
use webui_doctor::filter::{Filter, parse_state_filter};
use webui_doctor::gate::Gate;
use webui_doctor::model::StateSet;
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
        Command::Serve(args) => serve(args),
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
    let source = source_choice(sel.source);
    if let Some(name) = &sel.netns {
        netns::enter(name)?;
    }
    Ok(Query { source, filter, processes: sel.processes })
}

fn sockets(args: SocketsArgs) -> anyhow::Result<u8> {
    let q = query(&args.selection)?;
    let (snapshot, attribution) = collect(&q)?;
    let report = Report::new(&snapshot, &q.filter, args.selection.netns.as_deref(), attribution);
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
            let listening = webui_doctor::listening_ports(&q, &snapshot.sockets)
                .context("reading listening sockets for the port label")?;
            let metrics = render::prometheus::SocketMetrics::new(&snapshot.sockets, snapshot.source, &listening);
            render::prometheus::write(&mut out, metrics)?;
        }
    }
    out.flush()?;
    Ok(OK)
}

fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let q = query(&args.selection)?;
    let (snapshot, attribution) = collect(&q)?;
    let report = Report::new(&snapshot, &q.filter, args.selection.netns.as_deref(), attribution);
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
            render::table::write_findings(&mut out, &report)?;
        }
        CheckFormat::Json => render::json::write_check(&mut out, &report, &results)?,
    }
    out.flush()?;
    Ok(if ok { OK } else { BREACHED })
}

fn source_choice(arg: SourceArg) -> SourceChoice {
    match arg {
        SourceArg::Auto => SourceChoice::Auto,
        SourceArg::Netlink => SourceChoice::Netlink,
        SourceArg::Procfs => SourceChoice::Procfs,
    }
}

/// The access token: `--token-file`, else `WEBUI_DOCTOR_TOKEN`. Never a command-line argument,
/// where `ps` would show it.
fn token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let raw = match &args.token_file {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("reading token file {}", path.display()))?)
        }
        None => std::env::var("WEBUI_DOCTOR_TOKEN").ok(),
    };
    match raw.map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() => anyhow::bail!("the access token is empty"),
        other => Ok(other),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    use std::time::Duration;
    use webui_doctor::serve::Provider;
    use webui_doctor_server::{Config, KeepaliveConfig, tuning};

    let idle = Duration::from_secs(args.keepalive_idle.into());
    let interval = Duration::from_secs(args.keepalive_interval.into());
    let default_user_timeout = idle + interval * args.keepalive_count;
    let keepalive = KeepaliveConfig {
        enabled: !args.no_keepalive,
        idle,
        interval,
        count: args.keepalive_count,
        user_timeout: match args.user_timeout {
            None => Some(default_user_timeout),
            Some(Duration::ZERO) => None,
            Some(t) => Some(t),
        },
    };
    let config = Config {
        listen: args.listen,
        keepalive,
        heartbeat: args.heartbeat,
        snapshot_period: args.snapshot_period,
        header_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
        max_sse_clients: args.max_sse_clients as usize,
        token: token(&args)?,
        ..Config::default()
    };
    let provider = std::sync::Arc::new(Provider::new(source_choice(args.source)));
    let result = webui_doctor_server::run_blocking(config, provider.clone(), |server| {
        let addr = server.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let port = server.local_addr().map(|a| a.port()).unwrap_or(0);
        let watch = if args.watch_ports.is_empty() { vec![port] } else { args.watch_ports.clone() };
        eprintln!("webui-doctor serve: listening on http://{addr} (watching ports {watch:?})");
        provider.watch(watch);
        let options = tuning::describe(server.keepalive_probe());
        let prefix = if keepalive.enabled { "" } else { "keepalive off (--no-keepalive); " };
        eprintln!("webui-doctor serve: on every accepted socket: {prefix}{options}");
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(OK)
}
