//! webui-doctor: TCP connection health for Linux servers.
//!
//! Imports run one way, from the edges to the leaves:
//!
//! - `main` parses arguments (`cli`), does what has side effects on this process (entering a
//!   `--netns`, resolving the proc root once through `os`), and hands a `query::Query` on.
//! - `query` reads: a `source` (`source::netlink` or `source::procfs`) fills `model::Socket`s,
//!   `filter` selects them, `process` joins owners on request and `sockopt` their options; it
//!   also reads the facts the findings need (keepalive sysctls, listening ports).
//! - `analysis` builds the report from data alone: the summary, and the findings (`diagnose`);
//!   `gate` judges a summary.
//! - `verify` and `drill` prove the fix on a live server through `query`.
//! - `render` formats whatever it is given; it does no I/O but its writer and no analysis.
//! - `os` holds every syscall beyond `std` (rustix), behind one `cfg`; `model` (value types),
//!   `deadpeer` (how long a dead peer can hold a connection: the one rule every command judges
//!   by) and `units` (durations as people read them) are the leaves everything may use.
//!
//! `serve` adapts `query` to the server crate (`webui-doctor-server`), which knows HTTP and socket
//! options and nothing of how sockets are read.

pub mod analysis;
pub mod cgroup;
pub mod cli;
pub mod cure;
pub mod deadpeer;
pub mod diagnose;
pub mod drill;
pub mod error;
pub mod events;
pub mod exit_codes;
pub mod filter;
pub mod fix;
pub mod gate;
pub mod model;
pub mod netns;
pub mod os;
pub mod process;
pub mod query;
pub mod render;
pub mod serve;
pub mod sockopt;
pub mod source;
pub mod units;
pub mod verify;

pub use error::{Error, Result};
