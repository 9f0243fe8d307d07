//! `--format json`: the documented objects (README, "JSON output"). Field names are a contract.

use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::{Group, GroupBy, Summary};
use crate::diagnose::Finding;
use crate::filter::FilterEcho;
use crate::gate::RuleResult;
use crate::model::{Attribution, Socket, Source};
use crate::render::Report;
use crate::units::timestamp;

/// The fields every JSON document starts with: where, when, what was selected, what it adds up to.
#[derive(Serialize)]
struct Head<'a> {
    source: Source,
    taken_at: String,
    filters: FilterEcho<'a>,
    summary: &'a Summary,
    /// Fields asked for (`-i`, `-m`, cgroup) that the source cannot give: `null` in every socket.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unavailable: &'a [&'static str],
    /// Present with `-p`: how many sockets stayed without an owner, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    attribution: Option<Attribution>,
    findings: &'a [Finding],
    /// With `--by`: what the groups are split by, and the groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    grouped_by: Option<GroupBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [Group]>,
}

impl<'a> Head<'a> {
    fn of(report: &'a Report) -> Head<'a> {
        Head {
            source: report.snapshot.source,
            taken_at: timestamp(report.snapshot.taken_at),
            filters: report.filter.echo(report.netns),
            summary: &report.summary,
            unavailable: &report.snapshot.unavailable,
            attribution: report.attribution,
            findings: &report.findings,
            grouped_by: report.groups.as_ref().map(|(by, _)| *by),
            groups: report.groups.as_ref().map(|(_, g)| g.as_slice()),
        }
    }
}

#[derive(Serialize)]
struct SocketsDoc<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    sockets: &'a [Socket],
}

#[derive(Serialize)]
struct CheckDoc<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    ok: bool,
    rules: &'a [RuleResult],
}

fn write_doc(out: &mut impl Write, doc: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

/// `sockets --format json`.
pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    write_doc(out, &SocketsDoc { head: Head::of(report), sockets: &report.snapshot.sockets })
}

/// `sockets --format json --summary`: the head alone, so the source is still named.
pub fn write_summary(out: &mut impl Write, report: &Report) -> io::Result<()> {
    write_doc(out, &Head::of(report))
}

/// The sockets document on one line (for an SSE `data:` field or an HTTP body).
pub fn to_compact(report: &Report) -> serde_json::Result<String> {
    serde_json::to_string(&SocketsDoc { head: Head::of(report), sockets: &report.snapshot.sockets })
}

/// `check --format json`: the same head, the verdict and each rule's measurement.
pub fn write_check(out: &mut impl Write, report: &Report, rules: &[RuleResult]) -> io::Result<()> {
    write_doc(out, &CheckDoc { head: Head::of(report), ok: rules.iter().all(|r| r.ok), rules })
}
