//! An in-memory socket pair for driving sessions without the network: each
//! end reads what the other wrote, returns `WouldBlock` when there is
//! nothing (like a non-blocking socket), takes at most `capacity` unread
//! bytes, and hands out at most `chunk` bytes per read, so records arrive
//! in pieces.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

#[derive(Default)]
struct Queue {
    bytes: VecDeque<u8>,
    closed: bool,
}

/// One end of the pair.
pub struct End {
    rx: Rc<RefCell<Queue>>,
    tx: Rc<RefCell<Queue>>,
    pub capacity: usize,
    pub chunk: usize,
}

/// Two connected ends.
pub fn pair() -> (End, End) {
    let (a, b) = (Rc::default(), Rc::default());
    let end = |rx: &Rc<RefCell<Queue>>, tx: &Rc<RefCell<Queue>>| End {
        rx: rx.clone(),
        tx: tx.clone(),
        capacity: usize::MAX,
        chunk: usize::MAX,
    };
    (end(&a, &b), end(&b, &a))
}

impl End {
    /// Closes this end's sending side: the other end reads 0 once drained.
    pub fn shutdown(&self) {
        self.tx.borrow_mut().closed = true;
    }

    /// Bytes written by the other end and not read yet.
    pub fn unread(&self) -> usize {
        self.rx.borrow().bytes.len()
    }

    /// The first unread byte, if any.
    pub fn peek(&self) -> Option<u8> {
        self.rx.borrow().bytes.front().copied()
    }
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.rx.borrow_mut();
        if q.bytes.is_empty() {
            return if q.closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(q.bytes.len()).min(self.chunk);
        for (slot, byte) in buf.iter_mut().zip(q.bytes.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for End {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut q = self.tx.borrow_mut();
        let room = self.capacity.saturating_sub(q.bytes.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(room);
        q.bytes.extend(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
