
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
            cand --format 'Output format'
            cand -4 'Only IPv4 sockets'
            cand --ipv4 'Only IPv4 sockets'
            cand -6 'Only IPv6 sockets'
            cand --ipv6 'Only IPv6 sockets'
            cand -p 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --processes 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --summary 'Print only the summary (counts per state, CLOSE-WAIT, keepalive coverage); with --format json, the JSON document without its socket list'
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
            cand --max-close-wait 'The most CLOSE-WAIT sockets that still pass'
            cand --format 'Output format'
            cand -4 'Only IPv4 sockets'
            cand --ipv4 'Only IPv4 sockets'
            cand -6 'Only IPv6 sockets'
            cand --ipv6 'Only IPv6 sockets'
            cand -p 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --processes 'Show the process owning each socket (scans /proc/*/fd, like `ss -p`)'
            cand --require-keepalive 'Fail when any established socket in the selection has no keepalive timer armed'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'webui-doctor;help'= {
            cand sockets 'List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)'
            cand check 'Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'webui-doctor;help;sockets'= {
        }
        &'webui-doctor;help;check'= {
        }
        &'webui-doctor;help;help'= {
        }
    ]
    $completions[$command]
}
