//! The `webui-doctor` binary: parse arguments, call the library, map the outcome to an exit code
//! (0 ok, 1 gate breached, 2 error). Errors print as one line on stderr.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use webui_doctor::cli::{
    CheckArgs, CheckFormat, Cli, Command, Selection, ServeArgs, SocketsArgs, SocketsFormat, SourceArg, VerifyArgs,
};
use webui_doctor::exit_codes::{self, BREACHED, ERROR, OK};
use webui_doctor::filter::{Filter, parse_state_filter};
use webui_doctor::gate::Gate;
use webui_doctor::model::StateSet;
use webui_doctor::render::table::{Columns, Style};
use webui_doctor::render::{self, Report};
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
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| e.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind))
            == Some(io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Sockets(args) => sockets(args),
        Command::Check(args) => check(args),
        Command::Serve(args) => serve(args),
        Command::Verify(args) => verify(args),
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
    Ok(Query { source, filter, processes: sel.processes, sockopts: false })
}

fn sockets(args: SocketsArgs) -> anyhow::Result<u8> {
    let mut q = query(&args.selection)?;
    q.sockopts = args.sockopts;
    let style = Style::detect();
    let Some(period) = args.watch else {
        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        sockets_once(&args, &q, style, &mut out)?;
        out.flush()?;
        return Ok(OK);
    };
    // --watch: redraw in place on a terminal; piped, one report after another, separated by a
    // blank line, so a log keeps the history. Ends with Ctrl-C or when the reader goes away.
    loop {
        let mut frame = Vec::new();
        sockets_once(&args, &q, style, &mut frame)?;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        if style.tty {
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        out.write_all(&frame)?;
        if !style.tty {
            writeln!(out)?;
        }
        out.flush()?;
        drop(out);
        std::thread::sleep(period);
    }
}

fn sockets_once(args: &SocketsArgs, q: &Query, style: Style, out: &mut impl Write) -> anyhow::Result<()> {
    let (snapshot, attribution) = collect(q)?;
    let report = Report::new(&snapshot, &q.filter, args.selection.netns.as_deref(), attribution);
    let columns = Columns { processes: q.processes || q.sockopts || q.filter.wants_processes(), sockopts: q.sockopts };
    match (args.format, args.summary) {
        (SocketsFormat::Table, true) => render::table::write_summary(out, &report)?,
        (SocketsFormat::Table, false) => render::table::write(out, &report, style, columns)?,
        (SocketsFormat::Json, true) => render::json::write_summary(out, &report)?,
        (SocketsFormat::Json, false) => render::json::write(out, &report)?,
        (SocketsFormat::Prometheus, _) => {
            let listening = webui_doctor::listening_ports(q, &snapshot.sockets)
                .context("reading listening sockets for the port label")?;
            let metrics = render::prometheus::SocketMetrics::new(&snapshot.sockets, snapshot.source, &listening);
            render::prometheus::write(out, metrics)?;
        }
    }
    Ok(())
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
    limit_malloc_arenas();
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

fn verify(args: VerifyArgs) -> anyhow::Result<u8> {
    use std::net::ToSocketAddrs;
    use webui_doctor::verify::{self, Expectations};
    use webui_doctor::{diagnose::long_duration, drill};

    let target = args
        .target
        .to_socket_addrs()
        .with_context(|| format!("'{}' is not HOST:PORT", args.target))?
        .next()
        .with_context(|| format!("'{}' resolves to no address", args.target))?;
    let source = source_choice(args.source);
    let expect = Expectations {
        idle_s: args.expect_idle,
        interval_s: args.expect_interval,
        count: args.expect_count,
        user_timeout_ms: args.expect_user_timeout.map(|d| d.as_millis() as u32),
        max_detect: args.max_detect,
    };
    let probe = verify::connect(target, args.stream.as_deref(), source)?;
    let report = verify::verify(&probe, &expect);
    let text = args.format == CheckFormat::Text;
    if text {
        print_verify(&report);
    }
    let drilled = if args.drill {
        if text {
            println!(
                "drill: dropping the server's packets to {}; watching {} for up to {}",
                report.client,
                report.server,
                long_duration(args.timeout.as_millis() as u64)
            );
        }
        let d = drill::run(probe, args.timeout, source, |e| {
            if text {
                println!("  +{:.2}s {} {} unanswered", e.at_ms as f64 / 1000.0, e.timer, e.count);
            }
        })?;
        if text {
            match (d.interrupted, d.dropped_after_ms) {
                (true, _) => println!("drill: interrupted; the rule and the connection were removed"),
                (false, Some(ms)) => {
                    println!("drill: the server dropped the connection after {:.2} s", ms as f64 / 1000.0)
                }
                (false, None) => println!("drill: NOT dropped within {}", long_duration(d.timeout_ms)),
            }
        }
        Some(d)
    } else {
        drop(probe);
        None
    };
    let ok = report.ok && drilled.as_ref().is_none_or(|d| d.dropped_after_ms.is_some());
    if args.format == CheckFormat::Json {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            #[serde(flatten)]
            verify: &'a verify::VerifyReport,
            drill: Option<&'a drill::DrillReport>,
            ok: bool,
        }
        let stdout = io::stdout();
        let mut out = stdout.lock();
        serde_json::to_writer_pretty(&mut out, &Doc { verify: &report, drill: drilled.as_ref(), ok })?;
        writeln!(out)?;
    } else {
        println!("{}", if ok { "PASS" } else { "FAIL" });
    }
    if drilled.as_ref().is_some_and(|d| d.interrupted) {
        return Ok(ERROR);
    }
    for c in report.checks.iter().filter(|c| c.ok == Some(false)) {
        eprintln!("webui-doctor: verify failed: {}", c.message);
    }
    if let Some(d) = &drilled
        && d.dropped_after_ms.is_none()
    {
        eprintln!(
            "webui-doctor: verify failed: the server did not drop the vanished client within {}",
            long_duration(d.timeout_ms)
        );
    }
    Ok(if ok { OK } else { BREACHED })
}

fn print_verify(r: &webui_doctor::verify::VerifyReport) {
    let owner = r.process.as_ref().map(|p| format!(", {} pid {}", p.comm, p.pid)).unwrap_or_default();
    println!("server {} (accepted socket inode {}{owner}), client {}", r.server, r.inode, r.client);
    match r.timer {
        Some(t) => println!("timer: {} in {}", t.kind.name(), render::human_ms(t.expires_ms)),
        None => println!("timer: none"),
    }
    match (&r.options, &r.options_error) {
        (Some(o), _) => println!(
            "options (read from the server's socket): SO_KEEPALIVE={} TCP_NODELAY={} TCP_KEEPIDLE={}s TCP_KEEPINTVL={}s \
             TCP_KEEPCNT={} TCP_USER_TIMEOUT={}ms",
            u8::from(o.so_keepalive),
            u8::from(o.tcp_nodelay),
            o.keepidle_s,
            o.keepintvl_s,
            o.keepcnt,
            o.user_timeout_ms
        ),
        (None, Some(e)) => {
            println!("options: not readable ({e}); judging from the timer");
            if let Some(idle) = r.inferred_idle_s {
                println!("keepalive idle time inferred from the timer: about {idle} s");
            }
        }
        (None, None) => {}
    }
    for c in &r.checks {
        let mark = match c.ok {
            Some(true) => "ok  ",
            Some(false) => "FAIL",
            None => "??  ",
        };
        println!("{mark} {}: {}", c.check, c.message);
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core) and never returns
/// their free pages; with tokio's workers and blocking pool, a long-running server's RSS crept
/// up as connections came and went. Two arenas keep it flat at no measurable cost.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any server thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
