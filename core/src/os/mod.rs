//! Every side effect on the operating system that needs more than `std`: reading the
//! environment safely, `readlinkat`, `pidfd_getfd`, socket options, `setns`, rlimits, signals.
//! The Linux implementation is one module behind one `cfg`; elsewhere each call reports that it
//! is not supported, so the rest of the crate carries no `cfg` of its own.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub use other::*;
