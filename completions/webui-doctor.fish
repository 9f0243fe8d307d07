# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_webui_doctor_global_optspecs
    string join \n h/help V/version
end

function __fish_webui_doctor_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_webui_doctor_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_webui_doctor_using_subcommand
    set -l cmd (__fish_webui_doctor_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -s V -l version -d 'Print version'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "sockets" -d 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "check" -d 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "serve" -d 'Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "verify" -d 'Prove the keepalive fix on a live server: its accepted socket\'s options, and (--drill) a real dead-peer drop'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "fix" -d 'Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "events" -d 'Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed'
complete -c webui-doctor -n "__fish_webui_doctor_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l source -d 'Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback to procfs when the kernel refuses netlink' -r -f -a "auto\t'netlink, or procfs when the kernel refuses netlink'
netlink\t'a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)'
procfs\t'/proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l state -d 'Only sockets in this state or state group (repeatable; names as in `ss state ...`)' -r -f -a "established\t''
syn-sent\t''
syn-recv\t''
fin-wait-1\t''
fin-wait-2\t''
time-wait\t''
closed\t''
close-wait\t''
last-ack\t''
listening\t''
closing\t''
all\t'every state'
connected\t'all but listening, closed, time-wait and syn-recv'
synchronized\t'connected, less syn-sent'
bucket\t'the minisocket states: syn-recv, time-wait'
big\t'all but syn-recv and time-wait'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l port -d 'Only sockets whose local port is PORT: a server\'s sockets (repeatable)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l sport -d 'Only sockets whose local (source) port is in PORT or LOW-HIGH' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l dport -d 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l pid -d 'Only sockets owned by process PID (implies -p)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l process -d 'Only sockets owned by a process whose command name is NAME (implies -p)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l netns -d 'Read the sockets of network namespace NAME (as listed by `ip netns`)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l netns-pid -d 'Read the sockets of process PID\'s network namespace (a container\'s)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l cgroup -d 'Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g. /system.slice/nginx.service); needs the netlink source' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l format -d 'Output format' -r -f -a "table\t'a table like `ss`, then the summary'
json\t'one JSON object (schema in GUIDE.md)'
prometheus\t'Prometheus text, e.g. for node_exporter\'s textfile collector'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l by -d 'Add a summary per group: sockets per state, CLOSE-WAIT and keepalive coverage (for `process` also open files against the limit, and threads), largest CLOSE-WAIT first' -r -f -a "process\t'the owning process (implies -p)'
port\t'the local port where it is listening (the server side); other sockets as one group'
peer\t'the peer\'s address'
cgroup\t'the cgroup v2 path'
netns\t'the network namespace (with --all-netns)'
workload\t'the workload the cgroup path names: a systemd unit, a container, a Kubernetes pod'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l watch -d 'Refresh every SECS seconds: in place on a terminal, as repeated reports when piped' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s 4 -l ipv4 -d 'Only IPv4 sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s 6 -l ipv6 -d 'Only IPv6 sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s p -l processes -d 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l all-netns -d 'Read every network namespace on the host, one after another: the named ones (`ip netns`) and those of running processes, each once; every socket is tagged with its namespace'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s i -l info -d 'Show what each connection is doing, from tcp_info (like `ss -i`): RTT, retransmissions, unacknowledged segments, bytes not yet sent, time since the peer\'s last ACK, windows'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s m -l memory -d 'Show each socket\'s memory (like `ss -m`): receive and send queues against their buffers'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s e -l extended -d 'Show extended columns: the cgroup v2 path of each socket (like `ss -e --cgroup`)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s O -l sockopts -d 'Read each socket\'s keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, TCP_NODELAY) from its owning process with pidfd_getfd; implies -p. Needs root or the owner\'s user'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l summary -d 'Print only the summary (counts per state, CLOSE-WAIT, keepalive coverage); with --format json, the JSON document without its socket list'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -l force -d 'With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio group. pidfd_getfd re-tags the socket with this process\'s class id, which breaks tc and nftables `meta cgroup` rules for that service; without --force such sockets are skipped'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand sockets" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l source -d 'Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback to procfs when the kernel refuses netlink' -r -f -a "auto\t'netlink, or procfs when the kernel refuses netlink'
netlink\t'a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)'
procfs\t'/proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l state -d 'Only sockets in this state or state group (repeatable; names as in `ss state ...`)' -r -f -a "established\t''
syn-sent\t''
syn-recv\t''
fin-wait-1\t''
fin-wait-2\t''
time-wait\t''
closed\t''
close-wait\t''
last-ack\t''
listening\t''
closing\t''
all\t'every state'
connected\t'all but listening, closed, time-wait and syn-recv'
synchronized\t'connected, less syn-sent'
bucket\t'the minisocket states: syn-recv, time-wait'
big\t'all but syn-recv and time-wait'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l port -d 'Only sockets whose local port is PORT: a server\'s sockets (repeatable)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l sport -d 'Only sockets whose local (source) port is in PORT or LOW-HIGH' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l dport -d 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l pid -d 'Only sockets owned by process PID (implies -p)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l process -d 'Only sockets owned by a process whose command name is NAME (implies -p)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l netns -d 'Read the sockets of network namespace NAME (as listed by `ip netns`)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l netns-pid -d 'Read the sockets of process PID\'s network namespace (a container\'s)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l cgroup -d 'Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g. /system.slice/nginx.service); needs the netlink source' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l max-close-wait -d 'The most CLOSE-WAIT sockets that still pass' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l max-detect -d 'Fail when a dead peer could hold an established server-side socket longer than SECS, idle or with data in flight (the bound `verify` and the findings use); needs -O' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l format -d 'Output format' -r -f -a "text\t'one line per rule, then the source and socket count'
json\t'one JSON object: summary, rules and the verdict'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -s 4 -l ipv4 -d 'Only IPv4 sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -s 6 -l ipv6 -d 'Only IPv6 sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -s p -l processes -d 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l all-netns -d 'Read every network namespace on the host, one after another: the named ones (`ip netns`) and those of running processes, each once; every socket is tagged with its namespace'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l require-keepalive -d 'Fail when an established server-side socket in the selection (its local port listening, as the keepalive-missing finding counts them) has no keepalive timer armed; the host\'s own outgoing connections are not judged'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -s O -l sockopts -d 'Read each socket\'s keepalive options from its owning process (as `sockets -O`)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -l force -d 'With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio group (see `sockets --force`)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l listen -d 'Address to listen on' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l keepalive-idle -d 'Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l keepalive-interval -d 'Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l keepalive-count -d 'Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l user-timeout -d 'TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle + interval x count; 0 leaves the kernel default' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l heartbeat -d 'Seconds without an event after which an SSE stream gets a `: keepalive` comment' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l snapshot-period -d 'Seconds between snapshots pushed to SSE clients' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l watch-port -d 'Local ports the dashboard and SSE stream follow (repeatable; default: the server\'s own port)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l source -d 'Where to read sockets' -r -f -a "auto\t'netlink, or procfs when the kernel refuses netlink'
netlink\t'a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)'
procfs\t'/proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l token-file -d 'File holding the access token, at least 16 bytes (else the WEBUI_DOCTOR_TOKEN environment variable)' -r -F
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l web-config-file -d 'Prometheus exporter-toolkit web configuration (TLS, basic_auth_users, response headers), as node_exporter\'s --web.config.file; re-read when it changes' -r -F
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l header-timeout -d 'Seconds a client may take to send its request header before it is disconnected' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l max-connections -d 'Most connections open at once; past it, new ones get 503' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l max-sse-clients -d 'Most SSE streams open at once; past it, /api/events answers 503' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l max-connections-per-ip -d 'Most requests and SSE streams in flight at once from one client address (/healthz is never refused); past it, 503. Connections from one address are capped at twice this' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l body-timeout -d 'Seconds a client may take to send a request body (the log-in form) before it is disconnected' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l allow-host -d 'Also serve requests whose Host header is NAME (or NAME:PORT) when no token is set (repeatable). Without a token only the listening address, localhost, 127.0.0.1 and [::1] are served: other names are how a web page rebinds its own name to this server' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l max-rows -d 'Most sockets in each SSE event, the most urgent first (CLOSE-WAIT longest idle, then retransmitting, then established without keepalive); an event also stays within 64 KiB. The summary and findings always cover every watched socket' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l watchdog -d 'Seconds a connection\'s written bytes may stay unacknowledged before the server ends it (a client that stopped reading its SSE stream, or vanished where TCP_USER_TIMEOUT does not exist), or that acknowledges a large response at under 16 KiB/s over --body-timeout; 0 turns the watchdog and that floor off' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l no-keepalive -d 'Do not enable keepalive or the user timeout (for A/B comparisons); TCP_NODELAY stays on'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l allow-plain-http -d 'Serve plain HTTP on a non-loopback address (refused otherwise: give --web-config-file with tls_server_config)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -l allow-processes -d 'Let /api/snapshot name each socket\'s owning process (processes=1). Off by default: run as root, it would show every user\'s processes to anyone who can reach the server'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l netns -d 'Act in network namespace NAME (as listed by `ip netns`)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l netns-pid -d 'Act in process PID\'s network namespace (a container\'s)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l stream -d 'Send `GET PATH` and hold the response open (an SSE endpoint), for servers that close idle connections quickly' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l expect-idle -d 'Expected TCP_KEEPIDLE, in seconds' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l expect-interval -d 'Expected TCP_KEEPINTVL, in seconds' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l expect-count -d 'Expected TCP_KEEPCNT' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l expect-user-timeout -d 'Expected TCP_USER_TIMEOUT, in seconds (0: not set)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l max-detect -d 'The most the worst-case dead-peer detection (idle, or with data in flight) may take' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l timeout -d 'With --drill: how long to wait for the server to drop the connection' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l source -d 'Where to read sockets' -r -f -a "auto\t'netlink, or procfs when the kernel refuses netlink'
netlink\t'a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)'
procfs\t'/proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l format -d 'Output format' -r -f -a "text\t'the connection, its options, one line per check, the drill\'s probes as they come, then PASS or FAIL'
json\t'one JSON object: the checks, the drill and the verdict'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l drill -d 'Really test it: blackhole the client and measure when the server drops it (root only)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -l force -d 'Read the server\'s socket options even when it is in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags the socket with this process\'s class id)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l netns -d 'Act in network namespace NAME (as listed by `ip netns`)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l netns-pid -d 'Act in process PID\'s network namespace (a container\'s)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l port -d 'Fix the server listening on local port PORT (repeatable)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l pid -d 'Fix every listening TCP socket of process PID' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l keepalive-idle -d 'Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l keepalive-interval -d 'Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l keepalive-count -d 'Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l user-timeout -d 'TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle + interval x count; 0 leaves the kernel default' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l close-with -d 'With --close-wait: how to end them' -r -f -a "auto\t'`SOCK_DESTROY`, and `shutdown` where the kernel refuses it (`EOPNOTSUPP`)'
destroy\t'`SOCK_DESTROY` through sock_diag only (what `ss -K` does; needs CONFIG_INET_DIAG_DESTROY)'
shutdown\t'`shutdown(SHUT_RDWR)` on a `pidfd_getfd` copy only'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l idle-over -d 'With --close-wait: only sockets that have received nothing for longer than SECS (about the time since the peer\'s FIN; from tcp_info)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l cgroup -d 'With --persist, --list or --remove: the cgroup v2 directory (relative to the cgroup2 mount, as `ss --cgroup` prints it, or an absolute path under it); default: the root, the whole host' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l unit -d 'With --persist, --list or --remove: the cgroup of systemd unit NAME (`nginx.service`, or `nginx`), found in the cgroup tree' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l container -d 'With --persist, --list or --remove: the cgroup of the container whose id starts with ID (Docker, containerd, CRI-O, Podman, or a pod\'s container), found in the cgroup tree' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l follow -d 'Keep running: every SECS seconds (default 2), fix again a listening socket on the ports that is new (the server restarted) or has lost the options, and, where the server overrides them, every new connection; one line per change. Ends on SIGINT or SIGTERM' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l source -d 'Where to read sockets' -r -f -a "auto\t'netlink, or procfs when the kernel refuses netlink'
netlink\t'a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)'
procfs\t'/proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l format -d 'Output format' -r -f -a "text\t'a table of each selected socket and what was done, then one summary line; with --follow, then one line per event'
json\t'one JSON object: each socket with its options before and after; with --follow, JSON lines from the first (the report on one line, then one object per event)'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l no-nodelay -d 'Leave TCP_NODELAY as it is'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l close-wait -d 'Also end the selected ports\' CLOSE-WAIT sockets (the peer has closed; the server has not)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l dry-run -d 'Print the plan (each socket, each option from -> to, each socket to close) and change nothing'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l force -d 'Act even on a server in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags its sockets with this process\'s class id, which breaks tc and nftables `meta cgroup` rules)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l persist -d 'Also cure in the kernel: attach a cgroup sock_ops program that gives every connection accepted on the ports from now on the options at the handshake, whatever process accepts it, across restarts, with no daemon (needs root and CONFIG_CGROUP_BPF). With --dry-run: the program\'s instructions and where it would be attached'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l list -d 'Show the cures attached in the kernel (every cgroup, or under --cgroup), from the kernel'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l remove -d 'Detach the cures for the --port ports (in --cgroup, or anywhere), or --all of them; only webui-doctor\'s programs are touched'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l all -d 'With --remove: every cure webui-doctor attached'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -l allow-override -d 'Exit 0 even when the server sets its own keepalive options on every connection over the listener\'s (the next accepted connection is checked after each fix; the override is still reported)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand fix" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l port -d 'Only sockets whose local port is PORT: a server\'s sockets (repeatable)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l sport -d 'Only sockets whose local (source) port is in PORT or LOW-HIGH' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l dport -d 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l netns -d 'Act in network namespace NAME (as listed by `ip netns`)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l netns-pid -d 'Act in process PID\'s network namespace (a container\'s)' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l format -d 'Output format' -r -f -a "text\t'one line per ended socket'
json\t'one JSON object per line (JSON lines)'"
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l count -d 'Stop after N sockets have ended' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -l duration -d 'Stop after SECS seconds' -r
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -s 4 -l ipv4 -d 'Only IPv4 sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -s 6 -l ipv6 -d 'Only IPv6 sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "sockets" -d 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "check" -d 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "serve" -d 'Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "verify" -d 'Prove the keepalive fix on a live server: its accepted socket\'s options, and (--drill) a real dead-peer drop'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "fix" -d 'Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "events" -d 'Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed'
complete -c webui-doctor -n "__fish_webui_doctor_using_subcommand help; and not __fish_seen_subcommand_from sockets check serve verify fix events help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
