//! Integration tests: one binary, helpers in `util`. They run the real `webui-doctor` against
//! real sockets on loopback; root-only parts (namespaces, other users) skip outside CI only.

mod abuse;
mod adoption;
mod bad_input;
mod browser;
mod cgroup;
mod counting;
mod cure;
mod dashboard;
mod diagnosis;
mod events;
mod fallback;
mod fix;
mod gate;
mod generated;
mod hardening;
mod hostile;
mod info;
mod netns;
mod oracle;
mod peers;
mod privilege;
mod processes;
mod prometheus;
mod render;
mod safety;
mod serve;
mod server;
mod servers;
mod tcpext;
mod tls;
mod util;
mod verify;
