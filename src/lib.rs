//! webui-doctor: the command line, the commands that act, what they print, and `serve`'s
//! dashboard — on top of [`webui_doctor_core`], the listing and diagnosis library.
//!
//! Imports run one way, from the edges to the library:
//!
//! - `main` parses arguments ([`cli`]), does what has side effects on this process (entering a
//!   `--netns`, resolving the proc root once through `os`), and hands a `query::Query` to the
//!   library.
//! - [`fix`] acts on a running server's sockets, [`verify`] and [`drill`] prove the fix, and
//!   [`events`] follows the kernel's end notifications; each reads through the library.
//! - [`render`] formats whatever it is given and writes every sentence the tool prints (the
//!   library and the commands return data); it does no I/O but its writer and no analysis.
//! - With the default `serve` feature, `serve` adapts the library's reads to the `dashboard`:
//!   HTTP, SSE and `/metrics` on the tuned listener, watchdog and limiter of `webui-doctor-server`.
//!
//! The library's modules are re-exported here, so the commands, the tests and the fuzzers name
//! one tree (`webui_doctor::model`); they live in `core/` and depend on nothing in this package.

#![warn(missing_docs)]

pub use webui_doctor_core::{
    Error, Result, analysis, cgroup, cure, deadpeer, diagnose, error, filter, gate, model, netns, os, process, query,
    sockopt, source, tally, units,
};

pub mod cli;
#[cfg(feature = "serve")]
pub mod dashboard;
pub mod drill;
pub mod events;
pub mod exit_codes;
pub mod fix;
pub mod render;
#[cfg(feature = "serve")]
pub mod serve;
pub mod verify;
