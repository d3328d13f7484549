//! Who writes to a member's socket: its connection task, or (while the
//! task waits with nothing to write) the fan-out's lanes, straight to the
//! socket (see `direct_writes`). [`DirectSocket`] is that decision; the
//! member queue keeps it under its lock, so that the two never write at
//! once and per member the order is the queue's.

use std::os::fd::RawFd;

use bytes::Bytes;

/// A socket the fan-out may write group messages to while its connection
/// task waits with nothing to write.
#[derive(Debug)]
pub(super) struct DirectSocket {
    /// Open while this exists: the connection ends direct writes (drops
    /// this, under the queue's lock) before it closes its socket, and
    /// every direct write is made under that lock.
    fd: RawFd,
    owner: Owner,
    /// The highest number the task's replay wrote, given when it parks: a
    /// delivery up to it is not written again. Never raised by a lane's
    /// writes: deliveries come in order and once each, and a raw member
    /// has no replay (a group that starts over numbers from 1 again, and
    /// nothing tells raw members).
    replayed_to: u64,
}

/// Who writes to the socket next.
#[derive(Debug)]
enum Owner {
    /// The connection task.
    Task,
    /// The fan-out: the task waits with nothing queued, nothing buffered.
    Parked,
    /// A lane owes the socket `wire`, a message's frame, and the frames in
    /// `more` (later messages that came before the lane got to it); the
    /// task, if it wakes first, writes them itself.
    Owed { wire: Bytes, more: Vec<Bytes>, more_bytes: usize },
    /// The task, once it has taken the socket back (something was queued,
    /// or the socket did not take a whole frame: `rest` is what it must
    /// write before anything else).
    Back { rest: Option<Bytes> },
}

/// What a member queue's `claim` did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A lane is to write it (the queue's `send_owed`).
    Owed,
    /// Kept: queued for the task, added to what a lane already owes the
    /// socket, or already written.
    Kept,
    /// The queue was full: the member is evicted.
    Evicted,
}

/// What the task takes back from the fan-out (the queue's `take_back`):
/// the bytes to write before anything else, a frame's rest or the whole
/// frames owed to the socket (none, mostly).
pub type TakenBack = Vec<Bytes>;

/// Most frames, and bytes past the first frame, a socket may be owed at
/// once (past them, the task writes): one write batch of the task's own
/// (`connection::writes`), so a member's socket is never owed more than
/// its task would have buffered for it. At the maximum rate a lane then
/// writes a member a whole commit's messages in one call, as its task
/// would: with 16 frames at most, the task also woke for the rest of each
/// commit, and scenario a cost 14 % more per delivery than without lanes.
const OWED_FRAMES: usize = 64;
const OWED_BYTES: usize = 64 * 1024;

impl DirectSocket {
    pub(super) fn new(fd: RawFd) -> Self {
        Self { fd, owner: Owner::Task, replayed_to: 0 }
    }

    /// The task waits with nothing to write, its replay written up to
    /// `replayed_to`: the fan-out may write to it.
    pub(super) fn park(&mut self, replayed_to: u64) {
        if matches!(self.owner, Owner::Task) {
            self.owner = Owner::Parked;
            self.replayed_to = replayed_to;
        }
    }

    /// The task takes the socket back: what it must write first.
    pub(super) fn take_back(&mut self) -> TakenBack {
        match std::mem::replace(&mut self.owner, Owner::Task) {
            Owner::Task | Owner::Parked => Vec::new(),
            Owner::Owed { wire, more, .. } => std::iter::once(wire).chain(more).collect(),
            Owner::Back { rest } => rest.into_iter().collect(),
        }
    }

    /// Group message `seq` (whole frame: `wire`) for a parked socket:
    /// owed to it (a new send for a lane, or one more frame for the send a
    /// lane already owes, unless something was queued since: it goes
    /// first), or already written (a replay's); `None` when the task
    /// writes it.
    pub(super) fn claim(&mut self, seq: u64, wire: &Bytes, queued: bool) -> Option<Claim> {
        match &mut self.owner {
            Owner::Parked if seq <= self.replayed_to => Some(Claim::Kept),
            Owner::Parked => {
                self.owner = Owner::Owed { wire: wire.clone(), more: Vec::new(), more_bytes: 0 };
                Some(Claim::Owed)
            }
            Owner::Owed { more, more_bytes, .. }
                if !queued && more.len() + 1 < OWED_FRAMES && *more_bytes + wire.len() <= OWED_BYTES =>
            {
                *more_bytes += wire.len();
                more.push(wire.clone());
                Some(Claim::Kept)
            }
            Owner::Owed { .. } | Owner::Task | Owner::Back { .. } => None,
        }
    }

    /// Something was queued: it goes out after what the socket has, so the
    /// task writes next (an owed frame first).
    pub(super) fn queued(&mut self) {
        if matches!(self.owner, Owner::Parked) {
            self.owner = Owner::Back { rest: None };
        }
    }

    /// The member was evicted: nothing more is written for it, but the
    /// rest of a frame the socket took in part still goes first (its close
    /// frame must follow whole frames).
    pub(super) fn evicted(&mut self) {
        if matches!(self.owner, Owner::Parked | Owner::Owed { .. }) {
            self.owner = Owner::Back { rest: None };
        }
    }

    /// A lane writes the frames it owes the socket, unless the task took
    /// them over. What the socket does not take (all of it when the socket
    /// is full or failed) goes back to the task, which writes it first and
    /// meets the failure itself; `queued`: the task has more to write
    /// after them. Returns whether the task must be woken for a rest.
    pub(super) fn send_owed(&mut self, queued: bool) -> bool {
        let (wire, more) = match std::mem::replace(&mut self.owner, Owner::Task) {
            Owner::Owed { wire, more, .. } => (wire, more),
            other => {
                self.owner = other; // the task took them over
                return false;
            }
        };
        self.owner = match send(self.fd, &wire, &more) {
            Sent::All if queued => Owner::Back { rest: None },
            Sent::All => Owner::Parked,
            Sent::Part(written) => Owner::Back { rest: Some(rest_after(written, wire, &more)) },
        };
        matches!(self.owner, Owner::Back { rest: Some(_) })
    }
}

/// What is left of `wire` and `more` after their first `written` bytes.
fn rest_after(written: usize, wire: Bytes, more: &[Bytes]) -> Bytes {
    if more.is_empty() {
        return wire.slice(written..);
    }
    let all: Vec<u8> = std::iter::once(&wire).chain(more).flat_map(|frame| frame.iter().copied()).collect();
    Bytes::from(all).slice(written..)
}

/// How much of a frame a socket took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    All,
    /// This many bytes (0 when the socket was full or failed: the task's
    /// own write then meets the failure).
    Part(usize),
}

/// Writes `wire`, then `more` (fewer than [`OWED_FRAMES`]), to `fd` in one
/// system call, without waiting.
fn send(fd: RawFd, wire: &[u8], more: &[Bytes]) -> Sent {
    debug_assert!(more.len() < OWED_FRAMES, "claim owes a socket one batch at most");
    let whole = wire.len() + more.iter().map(Bytes::len).sum::<usize>();
    loop {
        let written = if more.is_empty() {
            // SAFETY: `wire` is valid for its length; `fd` is an open
            // socket while its queue allows direct writes (see the module
            // docs).
            unsafe { libc::send(fd, wire.as_ptr().cast(), wire.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) }
        } else {
            send_frames(fd, wire, more)
        };
        match usize::try_from(written) {
            Ok(written) if written == whole => return Sent::All,
            Ok(written) => return Sent::Part(written),
            Err(_) if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Sent::Part(0),
        }
    }
}

/// `sendmsg` of `wire` and `more`: its slices on the stack, since this
/// runs once per recipient of a delivery.
fn send_frames(fd: RawFd, wire: &[u8], more: &[Bytes]) -> isize {
    let mut slices = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; OWED_FRAMES];
    let frames = std::iter::once(wire).chain(more.iter().map(|frame| &frame[..]));
    let mut used = 0;
    for (slice, frame) in slices.iter_mut().zip(frames) {
        *slice = libc::iovec { iov_base: frame.as_ptr() as *mut _, iov_len: frame.len() };
        used += 1;
    }
    // SAFETY: the slices point into buffers valid for their lengths while
    // this runs; `fd` as in `send`.
    unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = slices.as_mut_ptr();
        message.msg_iovlen = used;
        libc::sendmsg(fd, &message, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::*;
    use crate::frame::Frame;
    use crate::queue::{Capacity, MemberQueue, Outbound};

    const CAPACITY: Capacity = Capacity { messages: 8, bytes: usize::MAX };

    /// A live member's queue writing directly to one end of a socket pair;
    /// the other end is the client's.
    fn direct_member() -> (MemberQueue, UnixStream, UnixStream) {
        let (server, client) = UnixStream::pair().unwrap();
        client.set_nonblocking(true).unwrap();
        let queue = MemberQueue::new(CAPACITY);
        queue.allow_direct(server.as_raw_fd());
        (queue, server, client)
    }

    fn message(seq: u64) -> (Outbound, Bytes) {
        let text = format!("message {seq}");
        let wire = Bytes::from(format!("<{text}>"));
        (Outbound::sequenced(seq, Frame::text(text)), wire)
    }

    /// Writes to `server` until its socket takes no more (the client reads
    /// nothing); returns how much it took.
    fn fill(server: &mut UnixStream) -> usize {
        server.set_nonblocking(true).unwrap();
        let filler = vec![b'.'; 64 * 1024];
        let mut filled = 0;
        while let Ok(n) = server.write(&filler) {
            filled += n;
        }
        filled
    }

    /// What the client can read now.
    fn received(client: &mut UnixStream) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match client.read(&mut chunk) {
                Ok(0) => return bytes,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => return bytes,
                Err(err) => panic!("{err}"),
            }
        }
    }

    struct Flag(std::sync::atomic::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Parks `queue`'s task the way the loop does: it waits on the queue.
    fn park_waiting(queue: &MemberQueue, replayed_to: u64) -> Arc<Flag> {
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(flag.clone());
        assert!(queue.poll_next(&mut std::task::Context::from_waker(&waker)).is_pending());
        queue.park(replayed_to);
        flag
    }

    #[test]
    fn a_parked_member_is_written_directly_and_its_task_has_nothing_left_to_write() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        for seq in 1..=3 {
            let (outbound, wire) = message(seq);
            assert_eq!(queue.claim(&outbound, &wire), Claim::Owed);
            queue.send_owed();
        }
        assert_eq!(received(&mut client), b"<message 1><message 2><message 3>");
        assert_eq!(queue.try_pop(), None, "nothing queued");
        assert!(queue.take_back().is_empty(), "nothing left for the task");
    }

    #[test]
    fn a_task_that_wakes_first_writes_what_the_socket_is_owed_itself() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        let (outbound, wire) = message(1);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Owed);
        assert_eq!(queue.take_back(), [wire]);
        queue.send_owed();
        assert!(received(&mut client).is_empty(), "the lane no longer writes it");
    }

    #[test]
    fn anything_queued_goes_out_after_what_the_socket_already_has() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        let (first, first_wire) = message(1);
        assert_eq!(queue.claim(&first, &first_wire), Claim::Owed);
        queue.push(Outbound::unsequenced(Frame::text("reply"))).unwrap();
        let (second, second_wire) = message(2);
        assert_eq!(
            queue.claim(&second, &second_wire),
            Claim::Kept,
            "a reply was queued after the owed frame: the task writes the next"
        );
        queue.send_owed();
        assert_eq!(received(&mut client), b"<message 1>");
        assert!(queue.take_back().is_empty());
        let queued: Vec<_> = std::iter::from_fn(|| queue.try_pop()).map(|o| o.seq).collect();
        assert_eq!(queued, [0, 2], "the reply, then message 2");
    }

    #[test]
    fn a_parked_member_that_gets_a_reply_is_its_tasks_again() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 4);
        queue.push(Outbound::unsequenced(Frame::text("reply"))).unwrap();
        let (outbound, wire) = message(5);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Kept);
        assert!(received(&mut client).is_empty());
        assert!(queue.take_back().is_empty());
    }

    #[test]
    fn what_a_full_socket_does_not_take_goes_back_to_the_task_which_is_woken() {
        let (queue, mut server, mut client) = direct_member();
        let filled = fill(&mut server);
        let woken = park_waiting(&queue, 0);
        let (outbound, _) = message(1);
        let wire = Bytes::from(vec![b'w'; 256 * 1024]);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Owed);
        queue.send_owed();
        assert!(woken.0.load(std::sync::atomic::Ordering::SeqCst), "the task is woken to write the rest");
        let first = queue.take_back();
        let [rest] = &first[..] else { panic!("the rest of the frame, alone: {first:?}") };
        let taken = received(&mut client).len() - filled;
        assert_eq!(taken + rest.len(), wire.len(), "what the socket took and the rest make the frame");
        assert_eq!(&rest[..], &wire[taken..]);
    }

    #[test]
    fn a_message_the_replay_sent_is_not_written_again() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 7);
        let (outbound, wire) = message(7);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Kept);
        assert!(received(&mut client).is_empty() && queue.try_pop().is_none());
    }

    #[test]
    fn no_direct_write_while_catching_up_with_something_queued_or_evicted() {
        let (server, _client) = UnixStream::pair().unwrap();
        let catching_up = MemberQueue::catching_up(CAPACITY);
        catching_up.allow_direct(server.as_raw_fd());
        catching_up.park(0);
        let (outbound, wire) = message(1);
        assert_eq!(catching_up.claim(&outbound, &wire), Claim::Kept, "noted for the replay");
        assert!(!catching_up.go_live(0), "the replay reads on");

        let (queue, _server, _client) = direct_member();
        queue.push(Outbound::unsequenced(Frame::text("reply"))).unwrap();
        queue.park(0);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Kept);

        let (evicted, _server, _client) = direct_member();
        evicted.evict();
        evicted.park(0);
        assert_eq!(evicted.claim(&outbound, &wire), Claim::Evicted);
    }

    #[test]
    fn once_direct_writes_end_the_socket_is_never_written() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        let (outbound, wire) = message(1);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Owed);
        queue.end_direct();
        queue.send_owed();
        queue.park(1);
        assert_eq!(queue.claim(&message(2).0, &message(2).1), Claim::Kept);
        assert!(received(&mut client).is_empty());
        assert!(queue.take_back().is_empty());
    }

    #[test]
    fn a_lane_that_falls_behind_writes_every_frame_it_owes_in_one_call() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        for seq in 1..=OWED_FRAMES as u64 {
            let (outbound, wire) = message(seq);
            let expected = if seq == 1 { Claim::Owed } else { Claim::Kept };
            assert_eq!(queue.claim(&outbound, &wire), expected, "{seq}: one send owes them all");
        }
        let (past, past_wire) = message(OWED_FRAMES as u64 + 1);
        assert_eq!(queue.claim(&past, &past_wire), Claim::Kept);
        assert_eq!(queue.try_pop().map(|o| o.seq), Some(OWED_FRAMES as u64 + 1), "past the most owed: queued");
        queue.send_owed();
        let expected: String = (1..=OWED_FRAMES).map(|seq| format!("<message {seq}>")).collect();
        assert_eq!(String::from_utf8(received(&mut client)).unwrap(), expected);
    }

    #[test]
    fn a_task_that_wakes_first_takes_every_owed_frame_in_order() {
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        let wires: Vec<Bytes> = (1..=3)
            .map(|seq| {
                let (outbound, wire) = message(seq);
                queue.claim(&outbound, &wire);
                wire
            })
            .collect();
        assert_eq!(queue.take_back(), wires);
        queue.send_owed();
        assert!(received(&mut client).is_empty());
    }

    #[test]
    fn numbers_that_start_over_are_written_to_a_member_the_lanes_wrote_higher_ones() {
        // A raw member has no replay, and a group that starts over numbers
        // from 1 again without telling it.
        let (queue, _server, mut client) = direct_member();
        park_waiting(&queue, 0);
        for seq in [49, 50, 1] {
            let (outbound, wire) = message(seq);
            assert_eq!(queue.claim(&outbound, &wire), Claim::Owed, "{seq}");
            queue.send_owed();
        }
        assert_eq!(received(&mut client), b"<message 49><message 50><message 1>");
    }

    #[test]
    fn an_evicted_member_still_gets_the_rest_of_a_frame_its_socket_took_in_part() {
        let (queue, mut server, mut client) = direct_member();
        fill(&mut server);
        park_waiting(&queue, 0);
        let (outbound, _) = message(1);
        let wire = Bytes::from(vec![b'w'; 256 * 1024]);
        assert_eq!(queue.claim(&outbound, &wire), Claim::Owed);
        queue.send_owed();
        let taken = received(&mut client).iter().filter(|byte| **byte == b'w').count();
        queue.evict();
        let rest = queue.take_back();
        assert_eq!(rest.iter().map(Bytes::len).sum::<usize>() + taken, wire.len(), "written first, then the close");
    }
}
