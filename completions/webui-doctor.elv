
use builtin;
use str;

set edit:completion:arg-completer[webui-doctor] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'webui-doctor'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'webui-doctor'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand sockets 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)'
            cand check 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)'
            cand serve 'Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix'
            cand verify 'Prove the keepalive fix on a live server: its accepted socket''s options, and (--drill) a real dead-peer drop'
            cand fix 'Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets'
            cand events 'Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'webui-doctor;sockets'= {
            cand --source 'Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback to procfs when the kernel refuses netlink'
            cand --state 'Only sockets in this state or state group (repeatable; names as in `ss state ...`)'
            cand --port 'Only sockets whose local port is PORT: a server''s sockets (repeatable)'
            cand --sport 'Only sockets whose local (source) port is in PORT or LOW-HIGH'
            cand --dport 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH'
            cand --pid 'Only sockets owned by process PID (implies -p)'
            cand --process 'Only sockets owned by a process whose command name is NAME (implies -p)'
            cand --netns 'Read the sockets of network namespace NAME (as listed by `ip netns`)'
            cand --netns-pid 'Read the sockets of process PID''s network namespace (a container''s)'
            cand --cgroup 'Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g. /system.slice/nginx.service); needs the netlink source'
            cand --format 'Output format'
            cand --by 'Add a summary per group: sockets per state, CLOSE-WAIT and keepalive coverage (for `process` also open files against the limit, and threads), largest CLOSE-WAIT first'
            cand --watch 'Refresh every SECS seconds: in place on a terminal, as repeated reports when piped'
            cand -4 'Only IPv4 sockets'
            cand --ipv4 'Only IPv4 sockets'
            cand -6 'Only IPv6 sockets'
            cand --ipv6 'Only IPv6 sockets'
            cand -p 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --processes 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --all-netns 'Read every network namespace on the host, one after another: the named ones (`ip netns`) and those of running processes, each once; every socket is tagged with its namespace'
            cand -i 'Show what each connection is doing, from tcp_info (like `ss -i`): RTT, retransmissions, unacknowledged segments, bytes not yet sent, time since the peer''s last ACK, windows'
            cand --info 'Show what each connection is doing, from tcp_info (like `ss -i`): RTT, retransmissions, unacknowledged segments, bytes not yet sent, time since the peer''s last ACK, windows'
            cand -m 'Show each socket''s memory (like `ss -m`): receive and send queues against their buffers'
            cand --memory 'Show each socket''s memory (like `ss -m`): receive and send queues against their buffers'
            cand -e 'Show extended columns: the cgroup v2 path of each socket (like `ss -e --cgroup`)'
            cand --extended 'Show extended columns: the cgroup v2 path of each socket (like `ss -e --cgroup`)'
            cand -O 'Read each socket''s keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, TCP_NODELAY) from its owning process with pidfd_getfd; implies -p. Needs root or the owner''s user'
            cand --sockopts 'Read each socket''s keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, TCP_NODELAY) from its owning process with pidfd_getfd; implies -p. Needs root or the owner''s user'
            cand --summary 'Print only the summary (counts per state, CLOSE-WAIT, keepalive coverage); with --format json, the JSON document without its socket list'
            cand --force 'With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio group. pidfd_getfd re-tags the socket with this process''s class id, which breaks tc and nftables `meta cgroup` rules for that service; without --force such sockets are skipped'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;check'= {
            cand --source 'Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback to procfs when the kernel refuses netlink'
            cand --state 'Only sockets in this state or state group (repeatable; names as in `ss state ...`)'
            cand --port 'Only sockets whose local port is PORT: a server''s sockets (repeatable)'
            cand --sport 'Only sockets whose local (source) port is in PORT or LOW-HIGH'
            cand --dport 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH'
            cand --pid 'Only sockets owned by process PID (implies -p)'
            cand --process 'Only sockets owned by a process whose command name is NAME (implies -p)'
            cand --netns 'Read the sockets of network namespace NAME (as listed by `ip netns`)'
            cand --netns-pid 'Read the sockets of process PID''s network namespace (a container''s)'
            cand --cgroup 'Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g. /system.slice/nginx.service); needs the netlink source'
            cand --max-close-wait 'The most CLOSE-WAIT sockets that still pass'
            cand --max-detect 'Fail when a dead peer could hold an established server-side socket longer than SECS, idle or with data in flight (the bound `verify` and the findings use); needs -O'
            cand --format 'Output format'
            cand -4 'Only IPv4 sockets'
            cand --ipv4 'Only IPv4 sockets'
            cand -6 'Only IPv6 sockets'
            cand --ipv6 'Only IPv6 sockets'
            cand -p 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --processes 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --all-netns 'Read every network namespace on the host, one after another: the named ones (`ip netns`) and those of running processes, each once; every socket is tagged with its namespace'
            cand --require-keepalive 'Fail when an established server-side socket in the selection (its local port listening, as the keepalive-missing finding counts them) has no keepalive timer armed; the host''s own outgoing connections are not judged'
            cand -O 'Read each socket''s keepalive options from its owning process (as `sockets -O`)'
            cand --sockopts 'Read each socket''s keepalive options from its owning process (as `sockets -O`)'
            cand --force 'With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio group (see `sockets --force`)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;serve'= {
            cand --listen 'Address to listen on'
            cand --keepalive-idle 'Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)'
            cand --keepalive-interval 'Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)'
            cand --keepalive-count 'Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)'
            cand --user-timeout 'TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle + interval x count; 0 leaves the kernel default'
            cand --heartbeat 'Seconds without an event after which an SSE stream gets a `: keepalive` comment'
            cand --snapshot-period 'Seconds between snapshots pushed to SSE clients'
            cand --watch-port 'Local ports the dashboard and SSE stream follow (repeatable; default: the server''s own port)'
            cand --source 'Where to read sockets'
            cand --token-file 'File holding the access token, at least 16 bytes (else the WEBUI_DOCTOR_TOKEN environment variable)'
            cand --web-config-file 'Prometheus exporter-toolkit web configuration (TLS, basic_auth_users, response headers), as node_exporter''s --web.config.file; re-read when it changes'
            cand --header-timeout 'Seconds a client may take to send its request header before it is disconnected'
            cand --max-connections 'Most connections open at once; past it, new ones get 503'
            cand --max-sse-clients 'Most SSE streams open at once; past it, /api/events answers 503'
            cand --max-connections-per-ip 'Most requests and SSE streams in flight at once from one client address (/healthz is never refused); past it, 503. Connections from one address are capped at twice this'
            cand --body-timeout 'Seconds a client may take to send a request body (the log-in form) before it is disconnected'
            cand --allow-host 'Also serve requests whose Host header is NAME (or NAME:PORT) when no token is set (repeatable). Without a token only the listening address, localhost, 127.0.0.1 and [::1] are served: other names are how a web page rebinds its own name to this server'
            cand --max-rows 'Most sockets in each SSE event, the most urgent first (CLOSE-WAIT longest idle, then retransmitting, then established without keepalive); an event also stays within 64 KiB. The summary and findings always cover every watched socket'
            cand --watchdog 'Seconds a connection''s written bytes may stay unacknowledged before the server ends it (a client that stopped reading its SSE stream, or vanished where TCP_USER_TIMEOUT does not exist), or that acknowledges a large response at under 16 KiB/s over --body-timeout; 0 turns the watchdog and that floor off'
            cand --no-keepalive 'Do not enable keepalive or the user timeout (for A/B comparisons); TCP_NODELAY stays on'
            cand --allow-plain-http 'Serve plain HTTP on a non-loopback address (refused otherwise: give --web-config-file with tls_server_config)'
            cand --allow-processes 'Let /api/snapshot name each socket''s owning process (processes=1). Off by default: run as root, it would show every user''s processes to anyone who can reach the server'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;verify'= {
            cand --netns 'Act in network namespace NAME (as listed by `ip netns`)'
            cand --netns-pid 'Act in process PID''s network namespace (a container''s)'
            cand --stream 'Send `GET PATH` and hold the response open (an SSE endpoint), for servers that close idle connections quickly'
            cand --expect-idle 'Expected TCP_KEEPIDLE, in seconds'
            cand --expect-interval 'Expected TCP_KEEPINTVL, in seconds'
            cand --expect-count 'Expected TCP_KEEPCNT'
            cand --expect-user-timeout 'Expected TCP_USER_TIMEOUT, in seconds (0: not set)'
            cand --max-detect 'The most the worst-case dead-peer detection (idle, or with data in flight) may take'
            cand --timeout 'With --drill: how long to wait for the server to drop the connection'
            cand --source 'Where to read sockets'
            cand --format 'Output format'
            cand --drill 'Really test it: blackhole the client and measure when the server drops it (root only)'
            cand --force 'Read the server''s socket options even when it is in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags the socket with this process''s class id)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;fix'= {
            cand --netns 'Act in network namespace NAME (as listed by `ip netns`)'
            cand --netns-pid 'Act in process PID''s network namespace (a container''s)'
            cand --port 'Fix the server listening on local port PORT (repeatable)'
            cand --pid 'Fix every listening TCP socket of process PID'
            cand --keepalive-idle 'Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)'
            cand --keepalive-interval 'Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)'
            cand --keepalive-count 'Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)'
            cand --user-timeout 'TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle + interval x count; 0 leaves the kernel default'
            cand --close-with 'With --close-wait: how to end them'
            cand --idle-over 'With --close-wait: only sockets that have received nothing for longer than SECS (about the time since the peer''s FIN; from tcp_info)'
            cand --cgroup 'With --persist, --list or --remove: the cgroup v2 directory (relative to the cgroup2 mount, as `ss --cgroup` prints it, or an absolute path under it); default: the root, the whole host'
            cand --unit 'With --persist, --list or --remove: the cgroup of systemd unit NAME (`nginx.service`, or `nginx`), found in the cgroup tree'
            cand --container 'With --persist, --list or --remove: the cgroup of the container whose id starts with ID (Docker, containerd, CRI-O, Podman, or a pod''s container), found in the cgroup tree'
            cand --follow 'Keep running: every SECS seconds (default 2), fix again a listening socket on the ports that is new (the server restarted) or has lost the options, and, where the server overrides them, every new connection; one line per change. Ends on SIGINT or SIGTERM'
            cand --source 'Where to read sockets'
            cand --format 'Output format'
            cand --no-nodelay 'Leave TCP_NODELAY as it is'
            cand --close-wait 'Also end the selected ports'' CLOSE-WAIT sockets (the peer has closed; the server has not)'
            cand --dry-run 'Print the plan (each socket, each option from -> to, each socket to close) and change nothing'
            cand --force 'Act even on a server in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags its sockets with this process''s class id, which breaks tc and nftables `meta cgroup` rules)'
            cand --persist 'Also cure in the kernel: attach a cgroup sock_ops program that gives every connection accepted on the ports from now on the options at the handshake, whatever process accepts it, across restarts, with no daemon (needs root and CONFIG_CGROUP_BPF). With --dry-run: the program''s instructions and where it would be attached'
            cand --list 'Show the cures attached in the kernel (every cgroup, or under --cgroup), from the kernel'
            cand --remove 'Detach the cures for the --port ports (in --cgroup, or anywhere), or --all of them; only webui-doctor''s programs are touched'
            cand --all 'With --remove: every cure webui-doctor attached'
            cand --allow-override 'Exit 0 even when the server sets its own keepalive options on every connection over the listener''s (the next accepted connection is checked after each fix; the override is still reported)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;events'= {
            cand --port 'Only sockets whose local port is PORT: a server''s sockets (repeatable)'
            cand --sport 'Only sockets whose local (source) port is in PORT or LOW-HIGH'
            cand --dport 'Only sockets whose remote (destination) port is in PORT or LOW-HIGH'
            cand --netns 'Act in network namespace NAME (as listed by `ip netns`)'
            cand --netns-pid 'Act in process PID''s network namespace (a container''s)'
            cand --format 'Output format'
            cand --count 'Stop after N sockets have ended'
            cand --duration 'Stop after SECS seconds'
            cand -4 'Only IPv4 sockets'
            cand --ipv4 'Only IPv4 sockets'
            cand -6 'Only IPv6 sockets'
            cand --ipv6 'Only IPv6 sockets'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;help'= {
            cand sockets 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)'
            cand check 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)'
            cand serve 'Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix'
            cand verify 'Prove the keepalive fix on a live server: its accepted socket''s options, and (--drill) a real dead-peer drop'
            cand fix 'Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets'
            cand events 'Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'webui-doctor;help;sockets'= {
        }
        &'webui-doctor;help;check'= {
        }
        &'webui-doctor;help;serve'= {
        }
        &'webui-doctor;help;verify'= {
        }
        &'webui-doctor;help;fix'= {
        }
        &'webui-doctor;help;events'= {
        }
        &'webui-doctor;help;help'= {
        }
    ]
    $completions[$command]
}
