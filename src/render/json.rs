//! `--format json`: the documented object (README, "JSON output"). Field names are a contract.

use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::Summary;
use crate::filter::FilterEcho;
use crate::model::{Socket, SourceKind};
use crate::render::{Attribution, Report, timestamp};

#[derive(Serialize)]
struct JsonReport<'a> {
    source: SourceKind,
    taken_at: String,
    filters: FilterEcho<'a>,
    summary: &'a Summary,
    /// Present with `-p`: how many sockets stayed without an owner, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    attribution: Option<Attribution>,
    sockets: &'a [Socket],
}

pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &value(report))?;
    writeln!(out)
}

fn value<'a>(report: &'a Report) -> JsonReport<'a> {
    JsonReport {
        source: report.snapshot.source,
        taken_at: timestamp(report.snapshot.taken_at),
        filters: report.filter.echo(report.netns),
        summary: &report.summary,
        attribution: report.attribution,
        sockets: &report.snapshot.sockets,
    }
}

/// The same object as a `serde_json::Value`, for callers that embed it (the gate's JSON).
pub fn to_value(report: &Report) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(value(report))
}
