//! Socket lists rendered as the dump arrives, in memory that does not grow with the host.
//!
//! A listing's head (the JSON summary and findings) or its layout (the table's column widths)
//! is known only after the last socket, so the sockets cannot be written as they come. Instead
//! each family's reader hands batches to render threads (one per core, at most 8); a writer
//! thread puts the rendered batches back in order and keeps up to [`SPILL_AT`] of them in
//! memory, the rest in an unnamed file in the temporary directory (`TMPDIR`, else `/tmp`), as
//! `sort` spills a large input. The command then writes the head and copies the parts out.
//! Where no such file can be made, the parts stay in memory. A [`Spill`] is a [`Tally`]: the
//! IPv6 part merges after the IPv4 part.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::model::Socket;
use crate::tally::Tally;

/// How a listing renders a batch of sockets.
pub trait Render: Clone + Send + 'static {
    /// What a batch yields besides its bytes (the table: its columns' widths).
    type Extra: Default + Send + 'static;
    /// Written between two non-empty batches.
    const SEPARATOR: &'static [u8];
    /// Appends `batch` rendered to `out`.
    fn render(&self, batch: &[Socket], out: &mut Vec<u8>) -> io::Result<Self::Extra>;
    /// Adds a later batch's extra to the total.
    fn combine(total: &mut Self::Extra, batch: Self::Extra);
}

/// Sockets handed to a render thread at once: small, as several batches are in flight.
const BATCH: usize = 512;

/// Bytes of rendered sockets a part keeps in memory before it spills (about 3,000 sockets of
/// JSON).
pub const SPILL_AT: usize = 2 << 20;

/// The sockets of one listing as they come; see the module.
pub struct Spill<R: Render> {
    render: R,
    batch: Vec<Socket>,
    pipeline: Option<Pipeline<R>>,
    /// The parts that came after this one's (merged), in order.
    later: Vec<Spill<R>>,
}

/// A rendered part of the list: its first bytes in `file`, the rest in `tail`.
pub struct Part {
    /// Sockets in it.
    pub count: usize,
    file: Option<std::fs::File>,
    tail: Vec<u8>,
}

type Rendered<E> = (usize, usize, io::Result<(Vec<u8>, E)>);

struct Pipeline<R: Render> {
    jobs: SyncSender<(usize, Vec<Socket>)>,
    sent: usize,
    /// How many batches it placed, the part, and the extras combined.
    writer: std::thread::JoinHandle<io::Result<(usize, Part, R::Extra)>>,
}

impl<R: Render> Spill<R> {
    /// An empty list rendered by `render`.
    pub fn new(render: R) -> Spill<R> {
        Spill { render, batch: Vec::new(), pipeline: None, later: Vec::new() }
    }

    fn send(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        let render = &self.render;
        let pipeline = self.pipeline.get_or_insert_with(|| Pipeline::start(render.clone()));
        // A pipeline that failed has stopped reading; its error is reported by `finish`.
        let _ = pipeline.jobs.send((pipeline.sent, batch));
        pipeline.sent += 1;
    }

    /// The rendered parts, in order, and their extras combined.
    pub fn finish(mut self) -> io::Result<(Vec<Part>, R::Extra)> {
        if !self.batch.is_empty() {
            self.send();
        }
        let mut parts = Vec::new();
        let mut extra = R::Extra::default();
        if let Some(Pipeline { jobs, sent, writer }) = self.pipeline {
            drop(jobs);
            let (placed, part, ours) = writer.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            // Every batch placed, or a render thread died on one: never a list with a hole.
            if placed != sent {
                return Err(io::Error::other(format!(
                    "{} of {sent} batches of sockets were not rendered",
                    sent - placed
                )));
            }
            parts.push(part);
            R::combine(&mut extra, ours);
        }
        for later in self.later {
            let (more, theirs) = later.finish()?;
            parts.extend(more);
            R::combine(&mut extra, theirs);
        }
        Ok((parts, extra))
    }
}

impl<R: Render> Tally for Spill<R> {
    fn add(&mut self, socket: &Socket) {
        self.take(socket.clone());
    }

    fn take(&mut self, socket: Socket) {
        self.batch.push(socket);
        if self.batch.len() == BATCH {
            self.send();
        }
    }

    fn merge(&mut self, later: Spill<R>) {
        self.later.push(later);
    }
}

impl<R: Render> Pipeline<R> {
    fn start(render: R) -> Pipeline<R> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        // Bounded queues: the reader waits rather than the memory grows.
        let (jobs, queued) = sync_channel::<(usize, Vec<Socket>)>(1);
        let queued = std::sync::Arc::new(std::sync::Mutex::new(queued));
        let (done, finished) = sync_channel::<Rendered<R::Extra>>(1);
        for _ in 0..threads {
            let (queued, done, render) = (queued.clone(), done.clone(), render.clone());
            std::thread::spawn(move || {
                loop {
                    let job = queued.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, batch)) = job else { return };
                    let mut out = Vec::with_capacity(batch.len() * 512);
                    let rendered = render.render(&batch, &mut out).map(|extra| (out, extra));
                    if done.send((seq, batch.len(), rendered)).is_err() {
                        return;
                    }
                }
            });
        }
        let writer = std::thread::spawn(move || assemble::<R>(finished));
        Pipeline { jobs, sent: 0, writer }
    }
}

/// The writer: the rendered batches in order, spilled past [`SPILL_AT`].
fn assemble<R: Render>(finished: Receiver<Rendered<R::Extra>>) -> io::Result<(usize, Part, R::Extra)> {
    let mut part = Part { count: 0, file: None, tail: Vec::with_capacity(1 << 20) };
    let mut extra = R::Extra::default();
    let mut spill = true;
    let mut waiting = std::collections::BTreeMap::new();
    let mut next = 0;
    for (seq, count, rendered) in finished {
        waiting.insert(seq, (count, rendered));
        while let Some((count, rendered)) = waiting.remove(&next) {
            next += 1;
            let (bytes, batch_extra) = rendered?;
            R::combine(&mut extra, batch_extra);
            if count == 0 {
                continue;
            }
            if part.count > 0 {
                part.tail.extend_from_slice(R::SEPARATOR);
            }
            part.tail.extend_from_slice(&bytes);
            part.count += count;
        }
        if spill && part.tail.len() >= SPILL_AT {
            if part.file.is_none() {
                part.file = unnamed_file();
                spill = part.file.is_some();
            }
            if let Some(file) = &mut part.file {
                file.write_all(&part.tail).map_err(|e| {
                    io::Error::new(e.kind(), format!("spilling the listing to {}: {e}", std::env::temp_dir().display()))
                })?;
                part.tail.clear();
            }
        }
    }
    Ok((next, part, extra))
}

impl Part {
    /// Its bytes, in order, read a megabyte at a time from the file (a few hundred reads for a
    /// million sockets).
    pub fn reader(self) -> io::Result<impl io::BufRead> {
        let file: Box<dyn Read> = match self.file {
            Some(mut file) => {
                io::Seek::rewind(&mut file)?;
                Box::new(file)
            }
            None => Box::new(io::empty()),
        };
        Ok(io::BufReader::with_capacity(1 << 20, file.chain(io::Cursor::new(self.tail))))
    }

    /// Copies its bytes to `out`: from the file straight to `out`'s file where both are files
    /// or pipes (the kernel copies, `copy_file_range`, `sendfile` or `splice`, as `cat` does).
    pub fn copy_to(self, out: &mut impl Write) -> io::Result<()> {
        if let Some(mut file) = self.file {
            io::Seek::rewind(&mut file)?;
            io::copy(&mut file, out)?;
        }
        out.write_all(&self.tail)
    }
}

/// A file in the temporary directory with no name (`O_TMPFILE`): nothing is left behind, however
/// the command ends. None where the file system cannot make one.
fn unnamed_file() -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
        .ok()
}
