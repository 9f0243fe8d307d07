//! The `webui-doctor` binary: parse arguments, do what touches this process (enter a namespace,
//! resolve the proc root, raise the fd limit), call the library, and map the outcome to an exit
//! code (0 ok, 1 gate breached, 2 error). Errors print as one line on stderr, with their causes.

use std::io::{self, BufWriter, Write};

use anyhow::Context;
use clap::Parser as _;

use webui_doctor::analysis::{ByPort, GroupBy, Grouping, Part, Report, Summary, groups};
use webui_doctor::cli::{
    Addresses, CheckArgs, CheckFormat, Cli, Command, EventsArgs, EventsFormat, FixArgs, FixFormat, KeepaliveFlags,
    Selection, ServeArgs, SocketsArgs, SocketsFormat, VerifyArgs,
};
use webui_doctor::diagnose::Diagnosis;
use webui_doctor::diagnose::Facts;
use webui_doctor::exit_codes::ExitCode;
use webui_doctor::filter::Filter;
use webui_doctor::gate::{Gate, ServerSide, server_bounds};
use webui_doctor::model::StateSet;
use webui_doctor::model::{Attribution, Snapshot, Socket, TcpExtChange};
use webui_doctor::query::{Query, collect, collect_namespaces, count, facts, listening_ports, read_tcpext};
use webui_doctor::render::table::{Columns, Style};
use webui_doctor::tally::Tally;
use webui_doctor::{netns, os, render};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli) {
        Ok(code) => code.into(),
        Err(err) if is_broken_pipe(&err) => ExitCode::Ok.into(),
        Err(err) => {
            eprintln!("webui-doctor: {}", render::Clean(&format!("{err:#}")));
            ExitCode::Error.into()
        }
    }
}

/// `--help` and `--version` print and exit 0; a bare `webui-doctor` prints the help and exits 2;
/// any other usage error is one line on stderr (clap's first line, which names the flag and the
/// reason) and exit 2, like every other error.
fn usage_error(e: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::Ok.into()
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::Error.into()
        }
        _ => {
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("webui-doctor: {}", line.strip_prefix("error: ").unwrap_or(line));
            ExitCode::Error.into()
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // A set-uid or file-capability install would act as root for a caller who could not: every
    // command that acts on another process, enters a namespace or runs a program refuses first.
    if os::privileged_by_exec() && acts(&cli.command) {
        anyhow::bail!(os::SETUID_REFUSAL);
    }
    match cli.command {
        Command::Sockets(args) => sockets(args),
        Command::Check(args) => check(args),
        Command::Serve(args) => serve(args),
        Command::Verify(args) => verify(args),
        Command::Fix(args) => fix(args),
        Command::Events(args) => events(args),
    }
}

/// Whether `command` acts on another process (`fix`, `-O`, `verify`), runs a program (the
/// drill's `nft`) or enters another network namespace.
fn acts(command: &Command) -> bool {
    let enters = |sel: &Selection| sel.netns.is_some() || sel.netns_pid.is_some() || sel.all_netns;
    match command {
        Command::Fix(_) | Command::Verify(_) => true,
        Command::Sockets(a) => a.sockopts || enters(&a.selection),
        Command::Check(a) => a.sockopts || enters(&a.selection),
        Command::Events(a) => a.namespace.given(),
        Command::Serve(_) => false,
    }
}

/// `events`: streams every ended socket until Ctrl-C, `--count` or `--duration`; each line is
/// flushed as it comes. The totals go to stderr at the end.
fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    enter(&args.namespace)?;
    let filter = address_filter(&args.addresses);
    let limits = webui_doctor::events::Limits { count: args.count, duration: args.duration };
    let json = args.format == EventsFormat::Json;
    os::catch_termination();
    let stdout = io::stdout();
    let totals = webui_doctor::events::run(&filter, limits, os::terminate_requested, |event| {
        let mut out = stdout.lock();
        match event {
            webui_doctor::events::Event::Ended(e) if json => render::events::write_json(&mut out, &e)?,
            webui_doctor::events::Event::Ended(e) => render::events::write_line(&mut out, &e)?,
            webui_doctor::events::Event::Overrun(n) => render::events::write_overrun(&mut out, json, n)?,
            // Counted; said once, in the totals.
            webui_doctor::events::Event::Malformed(_) => {}
        }
        out.flush()
    })?;
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    eprintln!(
        "webui-doctor: events: {} ended, {} (notifications lost), {} skipped, {} ignored",
        plural(totals.ended, "socket", "sockets"),
        plural(totals.overruns, "receive-buffer overrun", "receive-buffer overruns"),
        plural(totals.malformed, "malformed notification", "malformed notifications"),
        plural(totals.foreign, "message not from the kernel", "messages not from the kernel"),
    );
    Ok(ExitCode::Ok)
}

/// `--netns`/`--netns-pid` of `fix`, `verify` and `events`: switches this process into the
/// namespace, before anything is read or connected.
fn enter(ns: &webui_doctor::cli::Namespace) -> anyhow::Result<()> {
    if let Some(name) = &ns.netns {
        netns::enter(name)?;
    }
    if let Some(pid) = ns.netns_pid {
        netns::enter_pid(&os::proc_paths(true).root, pid)?;
    }
    Ok(())
}

/// `--netns`: switches this process into the namespace, before anything is read. A step of its
/// own, called first by each command, because it changes the whole process.
fn enter_netns(sel: &Selection) -> anyhow::Result<()> {
    if let Some(name) = &sel.netns {
        netns::enter(name)?;
    }
    if let Some(pid) = sel.netns_pid {
        netns::enter_pid(&os::proc_paths(true).root, pid)?;
    }
    Ok(())
}

/// The namespace a report is about, as the summary names it.
fn netns_label(sel: &Selection) -> Option<String> {
    sel.netns.clone().or_else(|| sel.netns_pid.map(|pid| format!("pid:{pid}")))
}

/// The ports and address families of `a`, every state.
fn address_filter(a: &Addresses) -> Filter {
    Filter {
        inet: !a.ipv6,
        inet6: !a.ipv4,
        ports: a.ports.clone(),
        sport: a.sport,
        dport: a.dport,
        ..Filter::default()
    }
}

/// The query a selection asks for; the proc root is resolved here, once.
fn query(sel: &Selection) -> Query {
    let states = if sel.states.is_empty() {
        StateSet::all()
    } else {
        sel.states.iter().fold(StateSet::EMPTY, |set, s| set.union(s.states()))
    };
    let filter = Filter {
        states,
        pid: sel.pid,
        process: sel.process.clone(),
        cgroup: sel.cgroup.as_deref().map(webui_doctor::cgroup::normalize),
        ..address_filter(&sel.addresses)
    };
    let mut q = Query::new(sel.source, filter, os::proc_paths(false));
    q.processes = sel.processes;
    q.extras.cgroup = sel.cgroup.is_some();
    q
}

fn sockets(args: SocketsArgs) -> anyhow::Result<ExitCode> {
    enter_netns(&args.selection)?;
    let mut q = query(&args.selection);
    if args.sockopts {
        // -O copies other processes' sockets: it reads the real /proc only.
        q.paths = os::proc_paths(true);
    }
    q.sockopts = args.sockopts;
    q.force = args.force;
    q.extras.info = args.info;
    q.extras.memory = args.memory;
    q.extras.cgroup |= args.extended || matches!(args.by, Some(GroupBy::Cgroup | GroupBy::Workload));
    q.extras.no_tcp_info = args.summary;
    // The JSON listing names every socket's cgroup.
    q.extras.cgroup |= args.format == SocketsFormat::Json && !args.summary;
    q.processes |= args.by == Some(GroupBy::Process);
    let style = Style::detect();
    let Some(period) = args.watch else {
        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        sockets_report(&args, &q, style, &mut out, None)?;
        out.flush()?;
        return Ok(ExitCode::Ok);
    };
    // --watch: redraw in place on a terminal; piped, one report after another, separated by a
    // blank line, so a log keeps the history. Ends with Ctrl-C or when the reader goes away.
    // Each report also gives the change of the host's TcpExt counters since the one before
    // (the first: since the command started).
    let mut last = read_tcpext(&q.paths).map(|t| (std::time::Instant::now(), t));
    loop {
        let now = read_tcpext(&q.paths).map(|t| (std::time::Instant::now(), t));
        let change = match (last, now) {
            (Some((then, before)), Some((at, after))) => {
                Some(TcpExtChange { seconds: at.duration_since(then).as_secs_f64(), counters: after.since(&before) })
            }
            _ => None,
        };
        last = now;
        let mut frame = Vec::new();
        sockets_report(&args, &q, style, &mut frame, change)?;
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

/// One read as `sockets` and `check` judge it: the current namespace with its facts, or with
/// `--all-netns` every namespace, each with its own.
enum Judged {
    One(Facts),
    /// Each namespace's part, and how many namespaces could not be entered.
    Namespaces(Vec<Part>, usize),
}

fn read_and_judge(sel: &Selection, q: &Query) -> anyhow::Result<(Snapshot, Option<Attribution>, Judged)> {
    if sel.all_netns {
        let namespaces = netns::all(&q.paths.root);
        let (snapshot, attribution, parts, skipped) = collect_namespaces(q, &namespaces)?;
        return Ok((snapshot, attribution, Judged::Namespaces(parts, skipped)));
    }
    let (snapshot, attribution) = collect(q)?;
    let facts = facts(q, &snapshot)?;
    Ok((snapshot, attribution, Judged::One(facts)))
}

fn report<'a>(
    snapshot: &'a Snapshot,
    q: &'a Query,
    netns: Option<&'a str>,
    attribution: Option<Attribution>,
    judged: &Judged,
) -> Report<'a> {
    match judged {
        Judged::One(facts) => Report::new(snapshot, &q.filter, netns, attribution, facts),
        Judged::Namespaces(parts, skipped) => Report::for_namespaces(snapshot, &q.filter, attribution, parts, *skipped),
    }
}

/// The socket list a counted listing renders as the dump arrives: one of the two, so each
/// socket is moved into it rather than copied.
enum List {
    Json(render::json::Listing),
    Table(render::table::Rows),
}

impl Tally for List {
    fn add(&mut self, socket: &Socket) {
        self.take(socket.clone());
    }

    fn take(&mut self, socket: Socket) {
        match self {
            List::Json(listing) => listing.take(socket),
            List::Table(rows) => rows.take(socket),
        }
    }

    fn merge(&mut self, later: List) {
        match (self, later) {
            (List::Json(listing), List::Json(later)) => listing.merge(later),
            (List::Table(rows), List::Table(later)) => rows.merge(later),
            _ => unreachable!("both families' lists are made by the same closure"),
        }
    }
}

fn sockets_report(
    args: &SocketsArgs,
    q: &Query,
    style: Style,
    out: &mut impl Write,
    tcpext: Option<TcpExtChange>,
) -> anyhow::Result<()> {
    if args.format == SocketsFormat::Prometheus {
        if args.selection.all_netns {
            anyhow::bail!("--all-netns cannot be used with --format prometheus: scrape each namespace with --netns");
        }
        // The gauges are counts: counted as the sockets come, none kept.
        let cgroups = args.by == Some(GroupBy::Cgroup);
        let counted =
            count(&Query { sockopts: false, ..q.clone() }, |facts| ByPort::new(facts.listening.clone(), cgroups))?;
        let by_port = counted.tally;
        let processes = by_port.listening_owners(&counted.snapshot.processes, None);
        let mut metrics = render::prometheus::SocketMetrics::new(by_port.ports, counted.snapshot.source);
        metrics.by_cgroup = by_port.cgroups;
        metrics.processes = processes;
        render::prometheus::write(out, metrics)?;
        return Ok(());
    }
    let columns = Columns {
        processes: q.joins_processes(),
        sockopts: q.sockopts,
        info: args.info,
        memory: args.memory,
        cgroup: args.extended,
        netns: args.selection.all_netns,
    };
    if !q.sockopts && !args.selection.all_netns {
        // Counted as the sockets come, none kept: the summary alone, or with the listing
        // rendered meanwhile (spilled past a few megabytes; see render::spill).
        let by = args.by;
        let (json, table) = (args.format == SocketsFormat::Json, args.format == SocketsFormat::Table);
        let listing = !args.summary;
        let counted = count(q, |facts| {
            let listening = if by == Some(GroupBy::Port) { facts.listening.clone() } else { Default::default() };
            let head = (Summary::default(), Diagnosis::new(facts), by.map(|by| Grouping::new(by, listening)));
            let list = match (listing, json, table) {
                (true, true, _) => Some(List::Json(render::json::Listing::new(render::json::Elements))),
                (true, _, true) => Some(List::Table(render::table::Rows::new(render::table::Cells(columns)))),
                _ => None,
            };
            (head, list)
        })?;
        let ((summary, diagnosis, grouping), lists) = counted.tally;
        let netns = netns_label(&args.selection);
        let findings = diagnosis.findings(&counted.facts);
        let mut report =
            Report::counted(&counted.snapshot, &q.filter, netns.as_deref(), counted.attribution, summary, findings);
        report.tcpext = tcpext;
        report.groups = grouping.map(|g| (g.by(), g.groups(&counted.snapshot.processes)));
        match lists {
            Some(List::Json(listing)) => {
                render::json::write_listing(out, &report, listing).context("writing the JSON listing")?
            }
            Some(List::Table(rows)) => {
                render::table::write_spilled(out, &report, rows, style, columns).context("writing the table")?
            }
            None if json => render::json::write_summary(out, &report)?,
            None => render::table::write_summary(out, &report)?,
        }
        return Ok(());
    }
    let (snapshot, attribution, judged) = read_and_judge(&args.selection, q)?;
    let netns = netns_label(&args.selection);
    let mut report = report(&snapshot, q, netns.as_deref(), attribution, &judged);
    report.tcpext = tcpext;
    if q.sockopts {
        let ports: std::collections::BTreeSet<u16> = webui_doctor::analysis::listening_ports(&snapshot.sockets);
        report.cures = cures_covering(&ports);
    }
    if let Some(by) = args.by {
        let listening = match by {
            GroupBy::Port => {
                listening_ports(q, &snapshot.sockets).context("reading listening sockets for --by port")?
            }
            _ => Default::default(),
        };
        report.groups = Some((by, groups(by, &snapshot.sockets, &listening, &snapshot.processes)));
    }
    match (args.format, args.summary) {
        (SocketsFormat::Table, true) => render::table::write_summary(out, &report)?,
        (SocketsFormat::Table, false) => render::table::write(out, &report, style, columns)?,
        (SocketsFormat::Json, true) => render::json::write_summary(out, &report)?,
        (SocketsFormat::Json, false) => render::json::write(out, &report)?,
        (SocketsFormat::Prometheus, _) => unreachable!("written above"),
    }
    Ok(())
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if args.max_detect.is_some() && !args.sockopts {
        anyhow::bail!("--max-detect needs -O: the bound is judged from the options read from the server's sockets");
    }
    enter_netns(&args.selection)?;
    let mut q = query(&args.selection);
    if args.sockopts {
        // -O copies other processes' sockets: it reads the real /proc only.
        q.paths = os::proc_paths(true);
    }
    q.sockopts = args.sockopts;
    q.force = args.force;
    let gate = Gate {
        max_close_wait: args.max_close_wait,
        require_keepalive: args.require_keepalive,
        max_detect_ms: args.max_detect.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    };
    let netns = netns_label(&args.selection);
    if !q.sockopts && !args.selection.all_netns {
        // Counts only: counted as the sockets come, none kept.
        let counted = count(&q, |facts| {
            (Summary::default(), Diagnosis::new(facts), ServerSide::new(facts.listening.clone(), facts.retries2))
        })?;
        let (summary, diagnosis, server_side) = counted.tally;
        let findings = diagnosis.findings(&counted.facts);
        let report =
            Report::counted(&counted.snapshot, &q.filter, netns.as_deref(), counted.attribution, summary, findings);
        return judge(&args, &gate, &report, &server_side.bounds);
    }
    let (snapshot, attribution, judged) = read_and_judge(&args.selection, &q)?;
    let report = report(&snapshot, &q, netns.as_deref(), attribution, &judged);
    let bounds = match &judged {
        Judged::One(facts) => {
            // The facts read the listening ports only when some connection lacks keepalive;
            // --require-keepalive also counts the server-side ones that have it.
            let listening = if args.require_keepalive && facts.listening.is_empty() {
                listening_ports(&q, &snapshot.sockets)?
            } else {
                facts.listening.clone()
            };
            server_bounds(&snapshot.sockets, &listening, facts.retries2)
        }
        Judged::Namespaces(parts, _) => {
            let mut all = webui_doctor::gate::Bounds::default();
            for part in parts {
                let sockets = snapshot.sockets.get(part.sockets.clone()).unwrap_or_default();
                all.extend(server_bounds(sockets, &part.facts.listening, part.facts.retries2));
            }
            all
        }
    };
    judge(&args, &gate, &report, &bounds)
}

/// `check`'s verdict on a report: each rule's line (text or JSON), the findings, the exit code.
fn judge(
    args: &CheckArgs,
    gate: &Gate,
    report: &Report,
    bounds: &webui_doctor::gate::Bounds,
) -> anyhow::Result<ExitCode> {
    let results = gate.evaluate(&report.summary, bounds);
    let ok = results.iter().all(|r| r.ok);
    for r in results.iter().filter(|r| !r.ok) {
        eprintln!("webui-doctor: check failed: {}", render::gate::message(r));
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        CheckFormat::Text => {
            for r in &results {
                writeln!(out, "{} {}: {}", if r.ok { "ok  " } else { "FAIL" }, r.rule, render::gate::message(r))?;
            }
            writeln!(out, "source: {}, {} sockets checked", report.snapshot.source.name(), report.summary.total)?;
            render::table::write_findings(&mut out, report)?;
        }
        CheckFormat::Json => render::json::write_check(&mut out, report, &results)?,
    }
    out.flush()?;
    Ok(if ok { ExitCode::Ok } else { ExitCode::Breached })
}

#[cfg(feature = "serve")]
/// The access token: `--token-file`, else `WEBUI_DOCTOR_TOKEN`. Never a command-line argument,
/// where `ps` would show it. A token file that group or others may read is refused, as `ssh`
/// refuses such a key: anyone who can read it can use the dashboard.
fn token(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let raw = match &args.token_file {
        Some(path) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .with_context(|| format!("reading token file {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                anyhow::bail!(
                    "token file {} is readable by group or others (mode {:o}): chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            Some(std::fs::read_to_string(path).with_context(|| format!("reading token file {}", path.display()))?)
        }
        None => std::env::var("WEBUI_DOCTOR_TOKEN").ok(),
    };
    match raw.map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() => anyhow::bail!("the access token is empty"),
        other => Ok(other),
    }
}

#[cfg(feature = "serve")]
fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use webui_doctor::dashboard::{Config, StartError};
    use webui_doctor::serve::Provider;
    use webui_doctor_server::tuning;

    let w = wanted(&args.keepalive, true);
    let secs = |s: u32| std::time::Duration::from_secs(s.into());
    let mut keepalive = webui_doctor_server::KeepaliveConfig::new(secs(w.keepidle_s), secs(w.keepintvl_s), w.keepcnt);
    keepalive.user_timeout = w.user_timeout_ms.map(|ms| std::time::Duration::from_millis(ms.into()));
    keepalive.enabled = !args.no_keepalive;
    let config = Config {
        listen: args.listen,
        keepalive,
        watchdog: Some(args.watchdog).filter(|d| !d.is_zero()),
        heartbeat: args.heartbeat,
        snapshot_period: args.snapshot_period,
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        max_connections: args.max_connections as usize,
        max_connections_per_ip: args.max_connections_per_ip as usize,
        max_sse_clients: args.max_sse_clients as usize,
        allowed_hosts: args.allow_hosts.clone(),
        token: token(&args)?,
        web_config: args.web_config_file.clone(),
        allow_plain_http: args.allow_plain_http,
        ..Config::default()
    };
    tracing_subscriber::fmt().with_writer(io::stderr).with_ansi(false).with_target(false).without_time().init();
    os::limit_malloc_arenas();
    os::raise_fd_limit();
    let provider = std::sync::Arc::new(Provider::new(
        args.source,
        os::proc_paths(false),
        args.allow_processes,
        args.max_rows as usize,
    ));
    let result = webui_doctor::dashboard::run_blocking(config, provider.clone(), |server| {
        let addr = server.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let port = server.local_addr().map(|a| a.port()).unwrap_or(0);
        let watch = if args.watch_ports.is_empty() { vec![port] } else { args.watch_ports.clone() };
        let scheme = if server.tls() { "https" } else { "http" };
        eprintln!("webui-doctor serve: listening on {scheme}://{addr} (watching ports {watch:?})");
        provider.watch(watch);
        let options = tuning::describe(server.keepalive_probe());
        let prefix = if keepalive.enabled { "" } else { "keepalive off (--no-keepalive); " };
        eprintln!("webui-doctor serve: on every accepted socket: {prefix}{options}");
    });
    if let Err(e) = result {
        // The server crate knows no flags; the way out is named here.
        match e.downcast_ref::<StartError>() {
            Some(StartError::TokenRequired(_)) => {
                anyhow::bail!(
                    "{e} (give --token-file FILE, set WEBUI_DOCTOR_TOKEN, or basic_auth_users in --web-config-file)"
                )
            }
            Some(StartError::PlainHttp(_)) => anyhow::bail!("{e}: --web-config-file FILE, or --allow-plain-http"),
            _ => {}
        }
        return Err(anyhow::Error::from_boxed(e));
    }
    Ok(ExitCode::Ok)
}

/// `serve` in a build without the `serve` feature: one line saying so (as ripgrep says of a
/// feature left out), exit 2.
#[cfg(not(feature = "serve"))]
fn serve(_: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "serve is not available in this build: it was built without the `serve` feature (cargo install webui-doctor builds it by default)"
    )
}

/// The options `serve` and `fix` share: idle, interval, count, and the user timeout (default
/// idle + interval x count, the library's keepalive rule; 0 leaves the kernel default).
fn wanted(flags: &KeepaliveFlags, nodelay: bool) -> webui_doctor::fix::Wanted {
    let user_timeout_ms = match flags.user_timeout {
        None => Some(webui_doctor::deadpeer::keepalive_ms(
            flags.keepalive_idle.into(),
            flags.keepalive_interval.into(),
            flags.keepalive_count.into(),
        )),
        Some(std::time::Duration::ZERO) => None,
        Some(t) => Some(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
    };
    webui_doctor::fix::Wanted {
        keepidle_s: flags.keepalive_idle,
        keepintvl_s: flags.keepalive_interval,
        keepcnt: flags.keepalive_count,
        // The parser bounds it to what TCP_USER_TIMEOUT's 32 bits hold.
        user_timeout_ms: user_timeout_ms.map(|ms| u32::try_from(ms).unwrap_or(u32::MAX)),
        nodelay,
    }
}

/// The kernel cures that cover one of `ports` (empty where the kernel will not say: not root,
/// no cgroup2, no BPF).
fn cures_covering(ports: &std::collections::BTreeSet<u16>) -> Vec<webui_doctor::cure::Attached> {
    if ports.is_empty() || !os::is_root() {
        return Vec::new();
    }
    let Some(mount) = webui_doctor::cgroup::mount_point(&os::proc_paths(true)) else { return Vec::new() };
    let mut all = webui_doctor::cure::list(&mount).unwrap_or_default();
    all.retain(|a| a.ports.iter().any(|p| ports.contains(p)));
    all
}

/// The cgroup `--cgroup`, `--unit` or `--container` names, relative to the cgroup2 mount.
fn cgroup_arg(args: &FixArgs, mount: &std::path::Path) -> anyhow::Result<Option<String>> {
    if args.unit.is_none() && args.container.is_none() {
        return Ok(args.cgroup.clone());
    }
    let found = webui_doctor::cgroup::find(mount, args.unit.as_deref(), args.container.as_deref());
    match (found, &args.unit, &args.container) {
        (Some(path), _, _) => Ok(Some(path)),
        (None, Some(unit), _) => anyhow::bail!("no cgroup of unit {unit} under {}", mount.display()),
        (None, _, Some(id)) => {
            anyhow::bail!("no cgroup of a container whose id starts with {id} under {}", mount.display())
        }
        (None, None, None) => Ok(None),
    }
}

/// `fix --list` and `fix --remove`: the kernel cures, read from and detached in the kernel.
fn cures(args: &FixArgs) -> anyhow::Result<ExitCode> {
    use webui_doctor::cure;
    let mount = webui_doctor::cgroup::mount_point(&os::proc_paths(true))
        .context("no cgroup2 mount in /proc/mounts: the kernel cure needs cgroup v2")?;
    let under = match cgroup_arg(args, &mount)? {
        Some(path) => Some(cure::resolve_cgroup(&mount, &path).map_err(anyhow::Error::msg)?.1),
        None => None,
    };
    let mut found = cure::list(&mount)?;
    found.retain(|a| under.as_deref().is_none_or(|u| webui_doctor::cgroup::is_within(&a.cgroup, u)));
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let json = args.format == FixFormat::Json;
    if args.list {
        render::cure::write_list(&mut out, &found, json)?;
    } else {
        found.retain(|a| args.all || a.ports.iter().any(|p| args.ports.contains(p)));
        let removed = cure::remove(&mount, &found)?;
        found.retain(|a| removed.contains(&a.id));
        render::cure::write_removed(&mut out, &found, json)?;
    }
    out.flush()?;
    Ok(ExitCode::Ok)
}

/// `fix --persist`: attaches the kernel cure for the ports to the cgroup, before the usual fix
/// of what exists now (the program never runs for sockets that exist already).
/// Returns whether the kernel cure is in place (false: the kernel refused it, and the command
/// fell back to fixing what exists now, saying why).
fn persist(args: &FixArgs, wanted: &webui_doctor::fix::Wanted) -> anyhow::Result<bool> {
    use webui_doctor::cure;
    let mount = webui_doctor::cgroup::mount_point(&os::proc_paths(true))
        .context("no cgroup2 mount in /proc/mounts: the kernel cure needs cgroup v2")?;
    let cgroup = cgroup_arg(args, &mount)?;
    let (dir, rel) = cure::resolve_cgroup(&mount, cgroup.as_deref().unwrap_or("/")).map_err(anyhow::Error::msg)?;
    let mut ports = args.ports.clone();
    ports.sort_unstable();
    ports.dedup();
    // With a namespace named (entered by now), the cure is limited to it.
    let netns_cookie = if args.namespace.given() {
        Some(os::netns_cookie().context("reading the network namespace's cookie (SO_NETNS_COOKIE, Linux 5.14)")?)
    } else {
        None
    };
    let c = cure::Cure { ports, options: wanted.targets(), netns_cookie };
    if args.dry_run {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        writeln!(out, "fix --persist --dry-run: would attach to cgroup {rel} ({}) the program:", dir.display())?;
        out.write_all(c.listing().as_bytes())?;
        return Ok(true);
    }
    let done = match cure::persist(&dir, &c) {
        Ok(done) => done,
        // No CONFIG_CGROUP_BPF, no bpf(2), or not allowed to use it: today's path still works.
        Err(e) if e.unavailable() => {
            let ports = c.ports.iter().map(|p| format!("--port {p}")).collect::<Vec<_>>().join(" ");
            eprintln!(
                "webui-doctor: fix --persist: the kernel cure is not available here ({e}); fixing what exists now \
                 instead: keep `webui-doctor fix {ports} --follow` running to cover restarts"
            );
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let stderr = io::stderr();
    render::cure::write_persisted(&mut stderr.lock(), &rel, &c, &done)?;
    Ok(true)
}

fn fix(args: FixArgs) -> anyhow::Result<ExitCode> {
    use webui_doctor::fix::{self, Plan, Target};
    enter(&args.namespace)?;
    // `--pid` of a process in another network namespace (a container's): its sockets are read
    // there.
    if let Some(pid) = args.pid
        && !args.namespace.given()
    {
        let root = os::proc_paths(true).root;
        if !netns::shares_ours(&root, pid) {
            netns::enter_pid(&root, pid)?;
        }
    }
    if args.list || args.remove {
        return cures(&args);
    }

    let wanted = wanted(&args.keepalive, !args.no_nodelay);
    let plan = Plan {
        target: match args.pid {
            Some(pid) => Target::Pid(pid),
            None => Target::Ports(args.ports.clone()),
        },
        wanted,
        close_wait: args.close_wait.then_some(args.close_with),
        idle_over_ms: args.idle_over.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        dry_run: args.dry_run,
        force: args.force,
        allow_override: args.allow_override,
    };
    let base = Query::new(args.source, Filter::default(), os::proc_paths(true));
    let persisted = !args.persist || persist(&args, &wanted)?;
    let report = match fix::run(&plan, &base) {
        Err(webui_doctor::Error::Fix(webui_doctor::error::FixError::NoListener { ports })) if args.persist => {
            let on = ports.iter().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ");
            if persisted {
                eprintln!(
                    "webui-doctor: fix: nothing listens on {on} now; the kernel cure applies to the connections it \
                     accepts once it does"
                );
            } else {
                eprintln!("webui-doctor: fix: nothing listens on {on} now, so nothing was fixed");
            }
            return Ok(if persisted { ExitCode::Ok } else { ExitCode::Breached });
        }
        other => other?,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        FixFormat::Text => render::fix::write(&mut out, &report)?,
        FixFormat::Json => render::fix::write_json(&mut out, &report, args.follow.is_some())?,
    }
    out.flush()?;
    for f in report.sockets.iter().filter(|f| f.error.is_some()) {
        eprintln!(
            "webui-doctor: fix: {} {}: {}",
            f.local,
            if f.role == webui_doctor::fix::Role::Listening {
                "(listening)".to_owned()
            } else {
                format!("from {}", f.peer)
            },
            render::Clean(f.error.as_deref().unwrap_or_default())
        );
    }
    if !args.allow_override && args.follow.is_none() {
        for n in report.overrides() {
            eprintln!(
                "webui-doctor: fix: :{}: the server sets its own {} on every connection (--allow-override to accept)",
                n.port,
                webui_doctor::fix::overridden_values(n)
            );
        }
    }
    if let Some(period) = args.follow {
        drop(out);
        let json = args.format == FixFormat::Json;
        let ended = fix::follow(&plan, &report, &base, period, |event| {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            render::fix::write_follow_event(&mut out, event, json)
        })?;
        return Ok(match ended {
            fix::Ended::Interrupted => ExitCode::Interrupted,
            fix::Ended::Exited => ExitCode::Ok,
        });
    }
    Ok(if report.ok() && persisted { ExitCode::Ok } else { ExitCode::Breached })
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    use std::net::ToSocketAddrs;
    use webui_doctor::verify::{self, Expectations};
    use webui_doctor::{drill, render::verify as out_verify};

    enter(&args.namespace)?;
    let target = args
        .target
        .to_socket_addrs()
        .with_context(|| format!("'{}' is not HOST:PORT", args.target))?
        .next()
        .with_context(|| format!("'{}' resolves to no address", args.target))?;
    let base = Query::new(args.source, Filter::default(), os::proc_paths(true));
    let expect = Expectations {
        idle_s: args.expect_idle,
        interval_s: args.expect_interval,
        count: args.expect_count,
        // The parser bounds it to what TCP_USER_TIMEOUT's 32 bits hold.
        user_timeout_ms: args.expect_user_timeout.map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
        max_detect: args.max_detect,
    };
    let probe = verify::connect(target, args.stream.as_deref(), &base, args.force, &expect)?;
    let report = verify::verify(&probe, &expect);
    let cures = cures_covering(&[target.port()].into());
    let text = args.format == webui_doctor::cli::VerifyFormat::Text;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if text {
        out_verify::write_report(&mut out, &report)?;
        for c in &cures {
            writeln!(out, "{}", render::cure::line(c))?;
        }
    }
    let drilled =
        if args.drill {
            let timeout_ms = u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX);
            if text {
                out_verify::write_drill_start(&mut out, &report, timeout_ms)?;
            }
            let d = drill::run(probe, args.timeout, &base, |e| {
                if text { out_verify::write_event(&mut out, e) } else { Ok(()) }
            })?;
            if text {
                out_verify::write_drill_end(&mut out, &d)?;
            }
            Some(d)
        } else {
            drop(probe);
            None
        };
    let ok = report.ok && drilled.as_ref().is_none_or(|d| d.dropped_after_ms.is_some());
    if text {
        out_verify::write_verdict(&mut out, ok)?;
    } else {
        out_verify::write_json(&mut out, &report, drilled.as_ref(), &cures, ok)?;
    }
    out.flush()?;
    if drilled.as_ref().is_some_and(|d| d.interrupted) {
        return Ok(ExitCode::Interrupted);
    }
    if let Some(line) = out_verify::failure_line(&report, drilled.as_ref()) {
        eprintln!("webui-doctor: verify failed: {line}");
    }
    Ok(if ok { ExitCode::Ok } else { ExitCode::Breached })
}
