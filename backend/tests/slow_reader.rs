//! A member that stops reading must not slow its group down nor make the
//! server hold what it cannot deliver. In a test binary of its own, so that
//! the process's memory reflects this test alone.

mod support;

use support::*;
use uuid::Uuid;

#[tokio::test]
async fn a_reader_that_never_reads_is_disconnected_while_others_keep_receiving() {
    let server = start(firehose_config()).await;
    let addr = server.local_addr();

    // A member with a tiny receive buffer that never reads.
    let tcp = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
    let (stalled, _) = tokio_tungstenite::client_async(ws_url(addr, "firehose", Uuid::new_v4()), tcp).await.unwrap();
    let mut reader = connect_raw(addr, "firehose").await;
    let mut publisher = connect_raw(addr, "firehose").await;
    let group = "firehose".parse().unwrap();
    assert_eq!(server.registry().members(&group), 3);

    let payload = "p".repeat(16 * 1024);
    let before = resident_bytes();
    let mut stalled_gone_at = None;
    for i in 0..4_000 {
        firehose_message(i, &payload, &mut publisher, &mut reader).await;
        if stalled_gone_at.is_none() && server.registry().members(&group) == 2 {
            stalled_gone_at = Some(i);
        }
    }
    let stalled_gone_at = stalled_gone_at.expect("the stalled reader was never evicted");
    assert!(stalled_gone_at < 500, "evicted only after {stalled_gone_at} messages");
    // 4,000 × 16 KiB = 64 MiB went through the group; the server kept none of it.
    let growth = resident_bytes().saturating_sub(before);
    assert!(growth < 16 << 20, "resident memory grew by {growth} bytes");
    drop(stalled);
    server.shutdown().await;
}
