//! Integration tests: one binary, helpers in `util`. They run the real `webui-doctor` against
//! real sockets on loopback; root-only parts (namespaces, other users) skip outside CI only.

mod oracle;
mod util;
