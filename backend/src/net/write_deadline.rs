//! A socket whose writes must make progress: a write (or flush) that the
//! socket has not taken for the deadline fails with `TimedOut`, and hyper
//! then drops the connection. hyper has no timer for writing a response,
//! so a client that asks for a large page and reads none of it would hold
//! the response's memory and its socket for as long as it likes.
//!
//! An upgraded WebSocket takes the socket back out of this wrapper (its
//! connection keeps its own write-stall clock, `--idle-timeout`, and a
//! close code for it).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Sleep};

#[derive(Debug)]
pub struct WriteDeadline<S> {
    inner: S,
    deadline: Duration,
    /// Armed when a write waits; disarmed by any progress. Boxed: a socket
    /// that writes freely holds no timer.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, deadline: Duration) -> Self {
        Self { inner, deadline, stalled: None }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// After a write that waits: an error once it has waited too long.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = self.deadline;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(sleep(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the peer read nothing"))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The outcome of a write-side call, with the deadline applied.
    fn watch<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => match self.poll_stalled(cx) {
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                _ => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.watch(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        this.watch(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_at_the_deadline() {
        let (client, _reader) = tokio::io::duplex(8);
        let mut socket = WriteDeadline::new(client, Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let err = socket.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        use tokio::io::AsyncReadExt;
        let (client, mut reader) = tokio::io::duplex(8);
        let mut socket = WriteDeadline::new(client, Duration::from_secs(10));
        let reading = tokio::spawn(async move {
            let mut byte = [0; 8];
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_secs(9)).await;
                reader.read_exact(&mut byte).await.unwrap();
            }
        });
        socket.write_all(&[0; 64]).await.expect("progress every 9 s is enough");
        reading.await.unwrap();
    }
}
