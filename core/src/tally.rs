//! Counting as the dump arrives. A [`Tally`] is what a command keeps of the sockets instead of
//! the sockets themselves: the summary's counts, the findings' per-port aggregates and a
//! bounded set of examples, the `--by` groups. Each address family is read on its own thread
//! into its own tally, and the IPv6 one is then merged after the IPv4 one, so a merged tally is
//! the tally of the two lists one after the other: what the same count over a stored list
//! gives, to the byte.

use crate::model::Socket;

/// What is kept of a stream of sockets.
pub trait Tally: Send {
    /// Counts one socket.
    fn add(&mut self, socket: &Socket);

    /// Counts one socket it may keep: a tally that stores sockets takes it without a copy.
    fn take(&mut self, socket: Socket) {
        self.add(&socket);
    }

    /// Adds a tally of the sockets that came after this one's (the IPv6 dump after IPv4's).
    fn merge(&mut self, later: Self);

    /// This tally over `sockets`, in order: what a stored list gives, the same way.
    fn over<'a>(mut self, sockets: impl IntoIterator<Item = &'a Socket>) -> Self
    where
        Self: Sized,
    {
        for s in sockets {
            self.add(s);
        }
        self
    }
}

impl<T: Tally> Tally for Option<T> {
    fn add(&mut self, socket: &Socket) {
        if let Some(t) = self {
            t.add(socket);
        }
    }

    fn take(&mut self, socket: Socket) {
        if let Some(t) = self {
            t.take(socket);
        }
    }

    fn merge(&mut self, later: Self) {
        if let (Some(t), Some(later)) = (self, later) {
            t.merge(later);
        }
    }
}

impl<A: Tally, B: Tally> Tally for (A, B) {
    fn add(&mut self, socket: &Socket) {
        self.0.add(socket);
        self.1.add(socket);
    }

    fn take(&mut self, socket: Socket) {
        self.0.add(&socket);
        self.1.take(socket);
    }

    fn merge(&mut self, later: Self) {
        self.0.merge(later.0);
        self.1.merge(later.1);
    }
}

impl<A: Tally, B: Tally, C: Tally> Tally for (A, B, C) {
    fn add(&mut self, socket: &Socket) {
        self.0.add(socket);
        self.1.add(socket);
        self.2.add(socket);
    }

    fn take(&mut self, socket: Socket) {
        self.0.add(&socket);
        self.1.add(&socket);
        self.2.take(socket);
    }

    fn merge(&mut self, later: Self) {
        self.0.merge(later.0);
        self.1.merge(later.1);
        self.2.merge(later.2);
    }
}

/// Nothing kept.
impl Tally for () {
    fn add(&mut self, _: &Socket) {}

    fn merge(&mut self, _: Self) {}
}
