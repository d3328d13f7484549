//! A write buffer that batches a connection's frames into one socket write
//! per flush and gives its memory back once flushed.
//!
//! tungstenite's own write buffer keeps the capacity of the largest batch
//! it ever held, for the connection's lifetime: after a replay of 100
//! messages, every idle connection would carry ~16 KiB. Here tungstenite
//! writes each frame straight through (`write_buffer_size(0)`) into this
//! buffer, which the connection flushes once per batch and which drops its
//! allocation after every flush: an idle connection holds no write buffer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write must first drain to the socket. Larger
/// than one batch plus one maximal frame, so that feeding a batch never
/// waits on the socket (only the flush does).
const DRAIN_AT: usize = 192 * 1024;
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
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buffer.len() >= DRAIN_AT {
            ready!(this.poll_drain(cx))?;
        }
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
    async fn a_full_buffer_drains_before_taking_more() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut writer = BatchedWriter::new(client);
        let frame = vec![1u8; DRAIN_AT];
        writer.write_all(&frame).await.unwrap();
        writer.write_all(&[2]).await.unwrap();
        assert_eq!(writer.buffer, [2], "the first frame went out to make room");
        let mut received = vec![0u8; DRAIN_AT];
        server.read_exact(&mut received).await.unwrap();
    }
}
