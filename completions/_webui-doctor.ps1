
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'webui-doctor' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'webui-doctor'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'webui-doctor' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('sockets', 'sockets', [CompletionResultType]::ParameterValue, 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove the keepalive fix on a live server: its accepted socket''s options, and (--drill) a real dead-peer drop')
            [CompletionResult]::new('fix', 'fix', [CompletionResultType]::ParameterValue, 'Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'webui-doctor;sockets' {
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback to procfs when the kernel refuses netlink')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Only sockets in this state or state group (repeatable; names as in `ss state ...`)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Only sockets whose local port is PORT: a server''s sockets (repeatable)')
            [CompletionResult]::new('--sport', '--sport', [CompletionResultType]::ParameterName, 'Only sockets whose local (source) port is in PORT or LOW-HIGH')
            [CompletionResult]::new('--dport', '--dport', [CompletionResultType]::ParameterName, 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH')
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Only sockets owned by process PID (implies -p)')
            [CompletionResult]::new('--process', '--process', [CompletionResultType]::ParameterName, 'Only sockets owned by a process whose command name is NAME (implies -p)')
            [CompletionResult]::new('--netns', '--netns', [CompletionResultType]::ParameterName, 'Read the sockets of network namespace NAME (as listed by `ip netns`)')
            [CompletionResult]::new('--netns-pid', '--netns-pid', [CompletionResultType]::ParameterName, 'Read the sockets of process PID''s network namespace (a container''s)')
            [CompletionResult]::new('--cgroup', '--cgroup', [CompletionResultType]::ParameterName, 'Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g. /system.slice/nginx.service); needs the netlink source')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--by', '--by', [CompletionResultType]::ParameterName, 'Add a summary per group: sockets per state, CLOSE-WAIT and keepalive coverage (for `process` also open files against the limit, and threads), largest CLOSE-WAIT first')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Refresh every SECS seconds: in place on a terminal, as repeated reports when piped')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Only IPv4 sockets')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Only IPv4 sockets')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Only IPv6 sockets')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Only IPv6 sockets')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)')
            [CompletionResult]::new('--all-netns', '--all-netns', [CompletionResultType]::ParameterName, 'Read every network namespace on the host, one after another: the named ones (`ip netns`) and those of running processes, each once; every socket is tagged with its namespace')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Show what each connection is doing, from tcp_info (like `ss -i`): RTT, retransmissions, unacknowledged segments, bytes not yet sent, time since the peer''s last ACK, windows')
            [CompletionResult]::new('--info', '--info', [CompletionResultType]::ParameterName, 'Show what each connection is doing, from tcp_info (like `ss -i`): RTT, retransmissions, unacknowledged segments, bytes not yet sent, time since the peer''s last ACK, windows')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Show each socket''s memory (like `ss -m`): receive and send queues against their buffers')
            [CompletionResult]::new('--memory', '--memory', [CompletionResultType]::ParameterName, 'Show each socket''s memory (like `ss -m`): receive and send queues against their buffers')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Show extended columns: the cgroup v2 path of each socket (like `ss -e --cgroup`)')
            [CompletionResult]::new('--extended', '--extended', [CompletionResultType]::ParameterName, 'Show extended columns: the cgroup v2 path of each socket (like `ss -e --cgroup`)')
            [CompletionResult]::new('-O', '-O ', [CompletionResultType]::ParameterName, 'Read each socket''s keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, TCP_NODELAY) from its owning process with pidfd_getfd; implies -p. Needs root or the owner''s user')
            [CompletionResult]::new('--sockopts', '--sockopts', [CompletionResultType]::ParameterName, 'Read each socket''s keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, TCP_NODELAY) from its owning process with pidfd_getfd; implies -p. Needs root or the owner''s user')
            [CompletionResult]::new('--summary', '--summary', [CompletionResultType]::ParameterName, 'Print only the summary (counts per state, CLOSE-WAIT, keepalive coverage); with --format json, the JSON document without its socket list')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio group. pidfd_getfd re-tags the socket with this process''s class id, which breaks tc and nftables `meta cgroup` rules for that service; without --force such sockets are skipped')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'webui-doctor;check' {
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback to procfs when the kernel refuses netlink')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Only sockets in this state or state group (repeatable; names as in `ss state ...`)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Only sockets whose local port is PORT: a server''s sockets (repeatable)')
            [CompletionResult]::new('--sport', '--sport', [CompletionResultType]::ParameterName, 'Only sockets whose local (source) port is in PORT or LOW-HIGH')
            [CompletionResult]::new('--dport', '--dport', [CompletionResultType]::ParameterName, 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH')
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Only sockets owned by process PID (implies -p)')
            [CompletionResult]::new('--process', '--process', [CompletionResultType]::ParameterName, 'Only sockets owned by a process whose command name is NAME (implies -p)')
            [CompletionResult]::new('--netns', '--netns', [CompletionResultType]::ParameterName, 'Read the sockets of network namespace NAME (as listed by `ip netns`)')
            [CompletionResult]::new('--netns-pid', '--netns-pid', [CompletionResultType]::ParameterName, 'Read the sockets of process PID''s network namespace (a container''s)')
            [CompletionResult]::new('--cgroup', '--cgroup', [CompletionResultType]::ParameterName, 'Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g. /system.slice/nginx.service); needs the netlink source')
            [CompletionResult]::new('--max-close-wait', '--max-close-wait', [CompletionResultType]::ParameterName, 'The most CLOSE-WAIT sockets that still pass')
            [CompletionResult]::new('--max-detect', '--max-detect', [CompletionResultType]::ParameterName, 'Fail when a dead peer could hold an established server-side socket longer than SECS, idle or with data in flight (the bound `verify` and the findings use); needs -O')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Only IPv4 sockets')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Only IPv4 sockets')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Only IPv6 sockets')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Only IPv6 sockets')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)')
            [CompletionResult]::new('--processes', '--processes', [CompletionResultType]::ParameterName, 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)')
            [CompletionResult]::new('--all-netns', '--all-netns', [CompletionResultType]::ParameterName, 'Read every network namespace on the host, one after another: the named ones (`ip netns`) and those of running processes, each once; every socket is tagged with its namespace')
            [CompletionResult]::new('--require-keepalive', '--require-keepalive', [CompletionResultType]::ParameterName, 'Fail when an established server-side socket in the selection (its local port listening, as the keepalive-missing finding counts them) has no keepalive timer armed; the host''s own outgoing connections are not judged')
            [CompletionResult]::new('-O', '-O ', [CompletionResultType]::ParameterName, 'Read each socket''s keepalive options from its owning process (as `sockets -O`)')
            [CompletionResult]::new('--sockopts', '--sockopts', [CompletionResultType]::ParameterName, 'Read each socket''s keepalive options from its owning process (as `sockets -O`)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio group (see `sockets --force`)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'webui-doctor;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on')
            [CompletionResult]::new('--keepalive-idle', '--keepalive-idle', [CompletionResultType]::ParameterName, 'Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)')
            [CompletionResult]::new('--keepalive-interval', '--keepalive-interval', [CompletionResultType]::ParameterName, 'Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)')
            [CompletionResult]::new('--keepalive-count', '--keepalive-count', [CompletionResultType]::ParameterName, 'Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)')
            [CompletionResult]::new('--user-timeout', '--user-timeout', [CompletionResultType]::ParameterName, 'TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle + interval x count; 0 leaves the kernel default')
            [CompletionResult]::new('--heartbeat', '--heartbeat', [CompletionResultType]::ParameterName, 'Seconds without an event after which an SSE stream gets a `: keepalive` comment')
            [CompletionResult]::new('--snapshot-period', '--snapshot-period', [CompletionResultType]::ParameterName, 'Seconds between snapshots pushed to SSE clients')
            [CompletionResult]::new('--watch-port', '--watch-port', [CompletionResultType]::ParameterName, 'Local ports the dashboard and SSE stream follow (repeatable; default: the server''s own port)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read sockets')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'File holding the access token, at least 16 bytes (else the WEBUI_DOCTOR_TOKEN environment variable)')
            [CompletionResult]::new('--web-config-file', '--web-config-file', [CompletionResultType]::ParameterName, 'Prometheus exporter-toolkit web configuration (TLS, basic_auth_users, response headers), as node_exporter''s --web.config.file; re-read when it changes')
            [CompletionResult]::new('--header-timeout', '--header-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send its request header before it is disconnected')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Most connections open at once; past it, new ones get 503')
            [CompletionResult]::new('--max-sse-clients', '--max-sse-clients', [CompletionResultType]::ParameterName, 'Most SSE streams open at once; past it, /api/events answers 503')
            [CompletionResult]::new('--max-connections-per-ip', '--max-connections-per-ip', [CompletionResultType]::ParameterName, 'Most requests and SSE streams in flight at once from one client address (/healthz is never refused); past it, 503. Connections from one address are capped at twice this')
            [CompletionResult]::new('--body-timeout', '--body-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send a request body (the log-in form) before it is disconnected')
            [CompletionResult]::new('--allow-host', '--allow-host', [CompletionResultType]::ParameterName, 'Also serve requests whose Host header is NAME (or NAME:PORT) when no token is set (repeatable). Without a token only the listening address, localhost, 127.0.0.1 and [::1] are served: other names are how a web page rebinds its own name to this server')
            [CompletionResult]::new('--max-rows', '--max-rows', [CompletionResultType]::ParameterName, 'Most sockets in each SSE event, the most urgent first (CLOSE-WAIT longest idle, then retransmitting, then established without keepalive); an event also stays within 64 KiB. The summary and findings always cover every watched socket')
            [CompletionResult]::new('--watchdog', '--watchdog', [CompletionResultType]::ParameterName, 'Seconds a connection''s written bytes may stay unacknowledged before the server ends it (a client that stopped reading its SSE stream, or vanished where TCP_USER_TIMEOUT does not exist), or that acknowledges a large response at under 16 KiB/s over --body-timeout; 0 turns the watchdog and that floor off')
            [CompletionResult]::new('--no-keepalive', '--no-keepalive', [CompletionResultType]::ParameterName, 'Do not enable keepalive or the user timeout (for A/B comparisons); TCP_NODELAY stays on')
            [CompletionResult]::new('--allow-plain-http', '--allow-plain-http', [CompletionResultType]::ParameterName, 'Serve plain HTTP on a non-loopback address (refused otherwise: give --web-config-file with tls_server_config)')
            [CompletionResult]::new('--allow-processes', '--allow-processes', [CompletionResultType]::ParameterName, 'Let /api/snapshot name each socket''s owning process (processes=1). Off by default: run as root, it would show every user''s processes to anyone who can reach the server')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'webui-doctor;verify' {
            [CompletionResult]::new('--netns', '--netns', [CompletionResultType]::ParameterName, 'Act in network namespace NAME (as listed by `ip netns`)')
            [CompletionResult]::new('--netns-pid', '--netns-pid', [CompletionResultType]::ParameterName, 'Act in process PID''s network namespace (a container''s)')
            [CompletionResult]::new('--stream', '--stream', [CompletionResultType]::ParameterName, 'Send `GET PATH` and hold the response open (an SSE endpoint), for servers that close idle connections quickly')
            [CompletionResult]::new('--expect-idle', '--expect-idle', [CompletionResultType]::ParameterName, 'Expected TCP_KEEPIDLE, in seconds')
            [CompletionResult]::new('--expect-interval', '--expect-interval', [CompletionResultType]::ParameterName, 'Expected TCP_KEEPINTVL, in seconds')
            [CompletionResult]::new('--expect-count', '--expect-count', [CompletionResultType]::ParameterName, 'Expected TCP_KEEPCNT')
            [CompletionResult]::new('--expect-user-timeout', '--expect-user-timeout', [CompletionResultType]::ParameterName, 'Expected TCP_USER_TIMEOUT, in seconds (0: not set)')
            [CompletionResult]::new('--max-detect', '--max-detect', [CompletionResultType]::ParameterName, 'The most the worst-case dead-peer detection (idle, or with data in flight) may take')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'With --drill: how long to wait for the server to drop the connection')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read sockets')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--drill', '--drill', [CompletionResultType]::ParameterName, 'Really test it: blackhole the client and measure when the server drops it (root only)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Read the server''s socket options even when it is in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags the socket with this process''s class id)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'webui-doctor;fix' {
            [CompletionResult]::new('--netns', '--netns', [CompletionResultType]::ParameterName, 'Act in network namespace NAME (as listed by `ip netns`)')
            [CompletionResult]::new('--netns-pid', '--netns-pid', [CompletionResultType]::ParameterName, 'Act in process PID''s network namespace (a container''s)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Fix the server listening on local port PORT (repeatable)')
            [CompletionResult]::new('--pid', '--pid', [CompletionResultType]::ParameterName, 'Fix every listening TCP socket of process PID')
            [CompletionResult]::new('--keepalive-idle', '--keepalive-idle', [CompletionResultType]::ParameterName, 'Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)')
            [CompletionResult]::new('--keepalive-interval', '--keepalive-interval', [CompletionResultType]::ParameterName, 'Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)')
            [CompletionResult]::new('--keepalive-count', '--keepalive-count', [CompletionResultType]::ParameterName, 'Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)')
            [CompletionResult]::new('--user-timeout', '--user-timeout', [CompletionResultType]::ParameterName, 'TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle + interval x count; 0 leaves the kernel default')
            [CompletionResult]::new('--close-with', '--close-with', [CompletionResultType]::ParameterName, 'With --close-wait: how to end them')
            [CompletionResult]::new('--idle-over', '--idle-over', [CompletionResultType]::ParameterName, 'With --close-wait: only sockets that have received nothing for longer than SECS (about the time since the peer''s FIN; from tcp_info)')
            [CompletionResult]::new('--cgroup', '--cgroup', [CompletionResultType]::ParameterName, 'With --persist, --list or --remove: the cgroup v2 directory (relative to the cgroup2 mount, as `ss --cgroup` prints it, or an absolute path under it); default: the root, the whole host')
            [CompletionResult]::new('--unit', '--unit', [CompletionResultType]::ParameterName, 'With --persist, --list or --remove: the cgroup of systemd unit NAME (`nginx.service`, or `nginx`), found in the cgroup tree')
            [CompletionResult]::new('--container', '--container', [CompletionResultType]::ParameterName, 'With --persist, --list or --remove: the cgroup of the container whose id starts with ID (Docker, containerd, CRI-O, Podman, or a pod''s container), found in the cgroup tree')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep running: every SECS seconds (default 2), fix again a listening socket on the ports that is new (the server restarted) or has lost the options, and, where the server overrides them, every new connection; one line per change. Ends on SIGINT or SIGTERM')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Where to read sockets')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--no-nodelay', '--no-nodelay', [CompletionResultType]::ParameterName, 'Leave TCP_NODELAY as it is')
            [CompletionResult]::new('--close-wait', '--close-wait', [CompletionResultType]::ParameterName, 'Also end the selected ports'' CLOSE-WAIT sockets (the peer has closed; the server has not)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (each socket, each option from -> to, each socket to close) and change nothing')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Act even on a server in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags its sockets with this process''s class id, which breaks tc and nftables `meta cgroup` rules)')
            [CompletionResult]::new('--persist', '--persist', [CompletionResultType]::ParameterName, 'Also cure in the kernel: attach a cgroup sock_ops program that gives every connection accepted on the ports from now on the options at the handshake, whatever process accepts it, across restarts, with no daemon (needs root and CONFIG_CGROUP_BPF). With --dry-run: the program''s instructions and where it would be attached')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Show the cures attached in the kernel (every cgroup, or under --cgroup), from the kernel')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Detach the cures for the --port ports (in --cgroup, or anywhere), or --all of them; only webui-doctor''s programs are touched')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'With --remove: every cure webui-doctor attached')
            [CompletionResult]::new('--allow-override', '--allow-override', [CompletionResultType]::ParameterName, 'Exit 0 even when the server sets its own keepalive options on every connection over the listener''s (the next accepted connection is checked after each fix; the override is still reported)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'webui-doctor;events' {
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Only sockets whose local port is PORT: a server''s sockets (repeatable)')
            [CompletionResult]::new('--sport', '--sport', [CompletionResultType]::ParameterName, 'Only sockets whose local (source) port is in PORT or LOW-HIGH')
            [CompletionResult]::new('--dport', '--dport', [CompletionResultType]::ParameterName, 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH')
            [CompletionResult]::new('--netns', '--netns', [CompletionResultType]::ParameterName, 'Act in network namespace NAME (as listed by `ip netns`)')
            [CompletionResult]::new('--netns-pid', '--netns-pid', [CompletionResultType]::ParameterName, 'Act in process PID''s network namespace (a container''s)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Stop after N sockets have ended')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after SECS seconds')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Only IPv4 sockets')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Only IPv4 sockets')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Only IPv6 sockets')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Only IPv6 sockets')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'webui-doctor;help' {
            [CompletionResult]::new('sockets', 'sockets', [CompletionResultType]::ParameterValue, 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove the keepalive fix on a live server: its accepted socket''s options, and (--drill) a real dead-peer drop')
            [CompletionResult]::new('fix', 'fix', [CompletionResultType]::ParameterValue, 'Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'webui-doctor;help;sockets' {
            break
        }
        'webui-doctor;help;check' {
            break
        }
        'webui-doctor;help;serve' {
            break
        }
        'webui-doctor;help;verify' {
            break
        }
        'webui-doctor;help;fix' {
            break
        }
        'webui-doctor;help;events' {
            break
        }
        'webui-doctor;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
