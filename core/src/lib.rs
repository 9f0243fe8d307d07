//! webui-doctor-core: the listing and diagnosis library under `webui-doctor`.
//!
//! It reads a host's TCP sockets, selects them, joins their owners and options, and judges them;
//! it knows no command line, async runtime or HTTP, so a probe that only lists or checks links
//! none of them. Imports run one way, from the edges to the leaves:
//!
//! - [`query`] reads: a [`source`] ([`source::netlink`] or [`source::procfs`]) fills
//!   [`model::Socket`]s, [`filter`] selects them, [`process`] joins owners on request and
//!   [`sockopt`] their options; it also reads the facts the findings need (keepalive sysctls,
//!   listening ports, the kernel cures attached).
//! - [`analysis`] builds the report from data alone: the summary, and the findings
//!   ([`diagnose`]); [`gate`] judges a report. Each counts as a [`tally::Tally`], so the
//!   commands that only count (`--summary`, `check`, Prometheus, `--by`) keep counts, not sockets.
//! - [`cure`] is the kernel cure: the sock_ops program as instructions, and reading back what is
//!   attached.
//! - [`os`] holds every syscall beyond `std` (rustix), behind one `cfg`; [`model`] (value types),
//!   [`deadpeer`] (how long a dead peer can hold a connection: the one rule every command judges
//!   by) and [`units`] (durations as people read them) are the leaves everything may use.

#![warn(missing_docs)]

pub mod analysis;
pub mod cgroup;
pub mod cure;
pub mod deadpeer;
pub mod diagnose;
pub mod error;
pub mod filter;
pub mod gate;
pub mod model;
pub mod netns;
pub mod os;
pub mod process;
pub mod query;
pub mod sockopt;
pub mod source;
pub mod tally;
pub mod units;

pub use error::{Error, Result};
