//! A write buffer that batches a connection's frames into one socket write
//! per flush and gives its memory back once flushed.
//!
//! tungstenite's own write buffer keeps the capacity of the largest batch
//! it ever held, for the connection's lifetime: after a replay of 100
//! messages, every idle connection would carry ~16 KiB. Here tungstenite
//! writes each frame straight through (`write_buffer_size(0)`) into this
//! buffer, which the connection flushes once per batch and which drops its
//! allocation after every flush: an idle connection holds no write buffer.
//!
//! A write is always taken whole and never waits on the socket: only a
//! flush does. So feeding a frame can never block the connection's loop
//! outside its select (where the heartbeat, the stall check and the
//! shutdown are watched), and tungstenite's own buffer stays empty. The
//! bound is the loop's: it feeds only while nothing is [`buffered`]
//! (one batch or one replay page at a time), and it stops reading while
//! bytes wait, so even the pongs tungstenite writes on its own cannot pile
//! up here.
//!
//! [`buffered`]: BatchedWriter::buffered

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The first allocation of a batch: a live message or two fit; a replay
/// grows it. Kept small because, in a storm of joins, these short-lived
/// buffers fall between the connections' long-lived allocations and leave
/// holes glibc does not give back: with 4 KiB here, 19,000 JSON joins left
/// 10 KiB of RSS per connection, with 512 bytes 7 KiB. An idle connection
/// holds none.
const FIRST_CHUNK: usize = 512;

#[derive(Debug)]
pub struct BatchedWriter<S> {
    inner: S,
    buffer: Vec<u8>,
    written: usize,
}

impl<S> BatchedWriter<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, buffer: Vec::new(), written: 0 }
    }

    /// Bytes taken and not yet written to the socket.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.written
    }
}

impl<S: AsyncWrite + Unpin> BatchedWriter<S> {
    /// Writes the whole buffer to the socket.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buffer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffer[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.written = 0;
        self.buffer = Vec::new();
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BatchedWriter<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BatchedWriter<S> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buffer.capacity() == 0 {
            this.buffer.reserve(FIRST_CHUNK.max(data.len()));
        }
        this.buffer.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_reach_the_socket_on_flush_and_the_memory_is_released() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut writer = BatchedWriter::new(client);
        let frame = vec![7u8; 10_000];
        for _ in 0..5 {
            writer.write_all(&frame).await.unwrap();
        }
        assert_eq!(writer.buffer.len(), 50_000, "nothing written before the flush");
        writer.flush().await.unwrap();
        assert_eq!(writer.buffer.capacity(), 0, "the buffer is given back");
        let mut received = vec![0u8; 50_000];
        server.read_exact(&mut received).await.unwrap();
        assert!(received.iter().all(|&b| b == 7));
    }

    #[tokio::test]
    async fn a_write_never_waits_on_a_socket_that_takes_nothing() {
        use futures_util::FutureExt;
        let (client, _server) = tokio::io::duplex(16);
        let mut writer = BatchedWriter::new(client);
        let frame = vec![1u8; 64 * 1024];
        writer.write_all(&frame).now_or_never().expect("taken at once").unwrap();
        assert!(writer.flush().now_or_never().is_none(), "the flush waits for the reader");
        assert_eq!(writer.buffered(), frame.len() - 16, "what the socket took is no longer counted");
        writer.write_all(&[2]).now_or_never().expect("taken at once").unwrap();
        assert_eq!(writer.buffered(), frame.len() - 16 + 1);
    }
}
