//! Clients that join a long history and never read hold one page of the
//! server's memory each, and are closed within the idle timeout, while a
//! client that reads gets everything. In a test binary of its own, so that
//! the process's memory reflects this test alone.

mod support;

use std::time::Duration;

use roomcast_backend::history::Appending;
use roomcast_shared::{ChatMessage, ClientId, MessageId, Sender, ServerEvent};
use support::*;
use tokio::time::Instant;
use uuid::Uuid;

const MESSAGES: u64 = 10_000;
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_that_never_read_hold_little_and_are_closed_while_a_reader_gets_everything() {
    let mut config = test_config();
    config.idle_timeout = IDLE_TIMEOUT;
    config.ping_interval = Duration::from_millis(500);
    let server = start(config).await;
    let addr = server.local_addr();
    let group = "long".parse().unwrap();
    let text = "h".repeat(8 * 1024);
    for _ in 0..MESSAGES / 500 {
        let mut batch: Vec<_> = (0..500)
            .map(|_| {
                Appending::new(ChatMessage {
                    group: "long".parse().unwrap(),
                    seq: 0,
                    id: MessageId(Uuid::new_v4()),
                    from: Sender { client_id: ClientId(Uuid::new_v4()), name: None, verified: true },
                    text: text.clone(),
                    ts: 1,
                })
            })
            .collect();
        server.history().store().append(&mut batch).unwrap();
    }
    let before = resident_bytes();

    // 100 joiners from the start of the history, with small receive
    // buffers, that never read a byte after the handshake. Timed from the
    // last one's handshake: how long 100 handshakes take is the machine's,
    // not the bound's (timed from the first, this took 2.3 s alone and 4.25 s
    // once beside a parallel build, past the 4 s bound).
    let mut stalled = Vec::new();
    for n in 0..100u8 {
        let tcp = tcp_from([127, 0, 2, n], addr, Some(4096)).await;
        let url = format!("{}&since=0", ws_url(addr, "long", Uuid::new_v4()));
        stalled.push(upgrade_over(tcp, &url, &[]).await.unwrap());
    }
    let joined = Instant::now();

    // One client that reads gets all of it, in order, meanwhile.
    let url = format!("{}&since=0", ws_url(addr, "long", Uuid::new_v4()));
    let mut reader = upgrade_over(tcp_from([127, 0, 3, 1], addr, None).await, &url, &[]).await.unwrap();
    let reading = tokio::spawn(async move {
        let (mut next, mut peak) = (1, 0);
        loop {
            match next_event(&mut reader).await {
                ServerEvent::Message(message) => {
                    assert_eq!(message.seq, next, "in order");
                    next += 1;
                    if next % 500 == 0 {
                        peak = peak.max(resident_bytes());
                    }
                }
                ServerEvent::Synced { seq } => {
                    assert_eq!((seq, next), (MESSAGES, MESSAGES + 1), "all of them");
                    return (reader, peak);
                }
                ServerEvent::Welcome(_) => {}
                other => panic!("{other:?}"),
            }
        }
    });

    // The joiners that never read are gone within the idle timeout (checked
    // at the next ping, then the close grace), whatever the reader does.
    eventually(|| server.registry().members(&group) <= 1).await;
    let took = joined.elapsed();
    let (mut reader, peak) = reading.await.unwrap();
    assert!(took < IDLE_TIMEOUT + Duration::from_secs(2), "closed after {took:?}");
    let growth = peak.max(resident_bytes()).saturating_sub(before);
    assert!(growth < 64 << 20, "resident memory grew by {} MiB", growth >> 20);
    println!("resident memory grew by {} MiB; the 100 joiners were closed after {took:?}", growth >> 20);
    assert_round_trip(&mut reader, "still live").await;
    drop(stalled);
    server.shutdown().await;
}
