//! Direct writes: the fan-out writes a group message straight to the
//! sockets of the members whose connection tasks wait with nothing to
//! write, instead of queueing it and waking each task to write it.
//!
//! A delivery to 15,000 members otherwise costs 15,000 task wake-ups and
//! polls on top of 15,000 `send`s, and from the sequencer's thread each
//! wake-up goes to the back of the runtime's global queue. Written
//! directly, a server frame is the same bytes for every member (encoded
//! once per delivery, [`text_frame`]), so a member costs one `send`.
//!
//! # Who writes to a socket
//! Exactly one writer at a time, decided under the member queue's lock
//! ([`MemberQueue`]):
//! - the connection task, in every pass of its loop (it takes the socket
//!   back first, [`MemberQueue::take_back`]);
//! - when the task waits with nothing queued and nothing buffered, it
//!   *parks* ([`MemberQueue::park`]); a delivery then makes the socket
//!   *owed* its frame ([`MemberQueue::claim`]), and one of the [`Lanes`]'
//!   threads writes it ([`MemberQueue::send_owed`]) under that lock, so a
//!   connection that ends (it ends direct writes under the same lock
//!   before it closes its socket) is never written to after, and no reused
//!   descriptor number either;
//! - whatever else reaches the queue meanwhile (a reply, a presence
//!   update, the next message while one is owed) makes the task the writer
//!   again, after what the socket was owed: per member, order is the
//!   queue's.
//!
//! A socket that does not take a whole frame (its buffer is full) hands
//! the rest back to the task, which writes it before anything else: the
//! member is then held to the same bounds as any other (its queue fills
//! while its flush waits, and it is evicted).
//!
//! The lanes' threads take the sends off the sequencer's thread and spread
//! a large delivery over the machine's cores; a socket is owed at most one
//! write batch at a time, and the lanes hold at most [`OWED_LIMIT`] owed
//! sends (past it, members are queued as without direct writes).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::queue::MemberQueue;

/// Owed sends the lanes may hold at once, all deliveries together (a
/// delivery past it queues for the tasks instead). One is a queue's
/// reference, 8 bytes: 2 MiB at most.
pub const OWED_LIMIT: usize = 256 * 1024;

/// A delivery owing fewer sends than this goes to one lane; a larger one
/// is split over all of them.
const SPLIT_FROM: usize = 256;

/// An unmasked, final server text frame of `text`: what every member's
/// socket is written for one message.
pub fn text_frame(text: &str) -> Bytes {
    let len = text.len();
    let mut frame = BytesMut::with_capacity(len + 10);
    frame.put_u8(0x81);
    if len < 126 {
        frame.put_u8(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        frame.put_u8(126);
        frame.put_u16(short);
    } else {
        frame.put_u8(127);
        frame.put_u64(len as u64);
    }
    frame.put_slice(text.as_bytes());
    frame.freeze()
}

/// A send a delivery owes a member: its frames wait in the member's queue.
#[derive(Debug)]
pub struct Owed {
    pub queue: Arc<MemberQueue>,
}

/// Room a delivery reserved for its owed sends ([`Lanes::reserve`]).
#[derive(Debug)]
#[must_use = "hand it over, or the room stays taken"]
pub struct Reserved(usize);

/// The threads that write owed frames (`--fanout-threads`).
#[derive(Debug)]
pub struct Lanes {
    lanes: Vec<Sender<Vec<Owed>>>,
    /// Owed sends handed over and not yet made.
    owed: Arc<AtomicUsize>,
    next: AtomicUsize,
}

impl Lanes {
    /// Starts `threads` lanes (at least one). They end once this is
    /// dropped and what they hold is written.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let owed = Arc::new(AtomicUsize::new(0));
        let lanes = (0..threads.max(1))
            .map(|index| {
                let (lane, sends) = channel();
                let owed = owed.clone();
                std::thread::Builder::new()
                    .name(format!("roomcast-fanout-{index}"))
                    .spawn(move || write_owed(&sends, &owed))
                    .map(|_| lane)
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self { lanes, owed, next: AtomicUsize::new(0) })
    }

    /// Reserves room for a delivery to `members` to owe them sends, if
    /// the lanes have it ([`hand_over`](Self::hand_over) gives back what
    /// the delivery did not use).
    pub fn reserve(&self, members: usize) -> Option<Reserved> {
        let before = self.owed.fetch_add(members, Ordering::Relaxed);
        if before + members > OWED_LIMIT {
            self.owed.fetch_sub(members, Ordering::Relaxed);
            return None;
        }
        Some(Reserved(members))
    }

    /// Hands a delivery's owed sends to the lanes: a small one to the next
    /// lane in turn, a large one split over all of them.
    pub fn hand_over(&self, reserved: Reserved, mut owed: Vec<Owed>) {
        debug_assert!(owed.len() <= reserved.0, "a delivery owes each member one send at most");
        self.owed.fetch_sub(reserved.0.saturating_sub(owed.len()), Ordering::Relaxed);
        if owed.is_empty() {
            return;
        }
        let lanes = if owed.len() < SPLIT_FROM { 1 } else { self.lanes.len() };
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let share = owed.len().div_ceil(lanes);
        for lane in (0..lanes).map(|turn| &self.lanes[(first + turn) % self.lanes.len()]) {
            let rest = owed.split_off(share.min(owed.len()));
            let batch = std::mem::replace(&mut owed, rest);
            if let Err(unsent) = lane.send(batch) {
                // A lane thread only ends with its sender: never here.
                // The sends go to the tasks instead.
                give_back(unsent.0, &self.owed);
            }
        }
    }
}

/// A lane's thread: writes what it is owed, in the order handed over.
/// A send that panics (a bug; the panic hook has printed it) ends that
/// member's connection (1013, as a reader too slow: a JSON client comes
/// back and recovers what it missed), not the lane: a lane that ended
/// would leave the members it owes waiting for their tasks' next wake-up.
fn write_owed(sends: &Receiver<Vec<Owed>>, owed: &AtomicUsize) {
    while let Ok(batch) = sends.recv() {
        let made = batch.len();
        for Owed { queue } in batch {
            if catch_unwind(AssertUnwindSafe(|| queue.send_owed())).is_err() {
                tracing::error!("a direct write panicked; its member is closed");
                queue.evict();
            }
        }
        owed.fetch_sub(made, Ordering::Relaxed);
    }
}

/// Owed sends no lane takes: each task writes its own.
fn give_back(batch: Vec<Owed>, owed: &AtomicUsize) {
    owed.fetch_sub(batch.len(), Ordering::Relaxed);
    for Owed { queue } in batch {
        queue.wake_owed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_carry_their_length_in_the_shortest_form() {
        assert_eq!(&text_frame("hi")[..], b"\x81\x02hi");
        let medium = "m".repeat(300);
        assert_eq!(&text_frame(&medium)[..4], b"\x81\x7e\x01\x2c");
        let long = "l".repeat(70_000);
        let frame = text_frame(&long);
        assert_eq!(&frame[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(frame.len(), 70_010);
    }

    #[test]
    fn the_lanes_hold_at_most_their_limit_and_take_back_what_a_delivery_did_not_owe() {
        let lanes = Lanes::start(1).unwrap();
        let all = lanes.reserve(OWED_LIMIT).expect("room for the limit");
        assert!(lanes.reserve(1).is_none(), "past the limit: queued for the tasks instead");
        lanes.hand_over(all, Vec::new());
        let again = lanes.reserve(OWED_LIMIT).expect("given back");
        lanes.hand_over(again, Vec::new());
    }
}
