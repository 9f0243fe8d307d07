//! The kernel cure's output: what `fix --persist` attached, `fix --list`'s table or JSON, and
//! what `fix --remove` detached.

use std::io::{self, Write};

use crate::cure::{Attached, Cure, Persisted};
use crate::model::SockOptName;

fn ports(ports: &[u16]) -> String {
    ports.iter().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ")
}

/// The ports, and the namespace they are limited to.
fn where_(p: &[u16], netns_cookie: Option<u64>) -> String {
    match netns_cookie {
        Some(c) => format!("{} in the network namespace with cookie {c}", ports(p)),
        None => ports(p),
    }
}

fn options<'a>(o: impl Iterator<Item = (SockOptName, u32)> + 'a) -> String {
    o.map(|(name, v)| format!("{} {v}", name.name())).collect::<Vec<_>>().join(", ")
}

/// One line: what `--persist` did, where, for which ports, with which options.
pub fn write_persisted(out: &mut impl Write, cgroup: &str, cure: &Cure, done: &Persisted) -> io::Result<()> {
    let what = match done {
        Persisted::Attached { id } => format!("attached the keepalive program (id {id})"),
        Persisted::Unchanged { id } => {
            format!("nothing changed: the same keepalive program (id {id}) is attached already")
        }
        Persisted::Replaced { id, detached } => format!(
            "attached the keepalive program (id {id}) in place of {}",
            detached.iter().map(|d| format!("id {d}")).collect::<Vec<_>>().join(", ")
        ),
    };
    writeln!(
        out,
        "webui-doctor: fix --persist: {what} to cgroup {cgroup} for {}: every connection accepted on {} from now on \
         carries {} from its handshake, whatever process accepts it",
        where_(&cure.ports, cure.netns_cookie),
        if cure.ports.len() == 1 { "it" } else { "them" },
        options(cure.options.iter().copied())
    )
}

/// `fix --list`: a table (or a JSON array) of the cures attached.
pub fn write_list(out: &mut impl Write, cures: &[Attached], json: bool) -> io::Result<()> {
    if json {
        super::json::to_writer_pretty(&mut *out, cures)?;
        return writeln!(out);
    }
    if cures.is_empty() {
        return writeln!(out, "no keepalive cure is attached");
    }
    let rows: Vec<[String; 5]> = cures
        .iter()
        .map(|a| {
            [
                super::Clean(&a.cgroup).to_string(),
                where_(&a.ports, a.netns_cookie),
                a.id.to_string(),
                format!("{} s after boot", a.loaded_s),
                options(a.options.iter().map(|o| (o.option, o.value))),
            ]
        })
        .collect();
    super::write_columns(out, ["Cgroup", "Ports", "Program", "Loaded", "Options"], &rows)
}

/// `fix --remove`: each cure detached.
pub fn write_removed(out: &mut impl Write, removed: &[Attached], json: bool) -> io::Result<()> {
    if json {
        super::json::to_writer_pretty(&mut *out, removed)?;
        return writeln!(out);
    }
    if removed.is_empty() {
        return writeln!(out, "no keepalive cure matched: nothing detached");
    }
    for a in removed {
        writeln!(out, "detached the keepalive program (id {}) from cgroup {} for {}", a.id, a.cgroup, ports(&a.ports))?;
    }
    Ok(())
}

/// `kernel cure: program 97 in cgroup / gives connections accepted on :8787 …` — for `sockets -O`
/// and `verify`, where a cure covers a port shown.
pub fn line(a: &Attached) -> String {
    format!(
        "kernel cure: program {} in cgroup {} gives every connection accepted on {} {} at the handshake (fix \
         --persist; connections older than it are not covered)",
        a.id,
        super::Clean(&a.cgroup),
        where_(&a.ports, a.netns_cookie),
        options(a.options.iter().map(|o| (o.option, o.value)))
    )
}
