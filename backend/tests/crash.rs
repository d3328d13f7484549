//! kill -9 the server while publishers are sending; restart it on the same
//! file: every acknowledged message is there with its number, numbering
//! continues without reuse, and clients recover.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use roomcast_shared::{MessageId, ServerEvent};
use support::*;

/// Sends until killed, recording every acknowledgement.
async fn publish_until_cut(addr: SocketAddr, tag: usize) -> HashMap<MessageId, u64> {
    use futures_util::StreamExt;
    let mut ws = connect_json(addr, "crash").await;
    let mut acked = HashMap::new();
    for i in 0.. {
        send_text(&mut ws, &format!("p{tag}-{i}")).await;
        // Read whatever is there; stop at the end of the connection.
        loop {
            match tokio::time::timeout(Duration::from_millis(2), ws.next()).await {
                Err(_) => break,
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                    if let Ok(ServerEvent::Ack { id, seq }) = ServerEvent::decode(&text) {
                        acked.insert(id, seq);
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return acked,
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let database = TempDatabase::new();
    let addr = free_addr();
    let server = ServerProcess::start(addr, &database.0, &["--publish-rate", "0"]).await;
    let publishers: Vec<_> = (0..3).map(|tag| tokio::spawn(publish_until_cut(addr, tag))).collect();
    // Let them get well under way, then pull the plug mid-stream.
    let group = "crash";
    eventually_async(|| async move { stored_history(addr, group).await.len() >= 300 }).await;
    server.kill_9();
    let mut acked = HashMap::new();
    for publisher in publishers {
        acked.extend(publisher.await.unwrap());
    }
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());

    let server = ServerProcess::start(addr, &database.0, &["--publish-rate", "0"]).await;
    let stored = stored_history(server.addr, group).await;
    let stored_seq: HashMap<MessageId, u64> = stored.iter().map(|m| (m.id, m.seq)).collect();
    for (id, seq) in &acked {
        assert_eq!(stored_seq.get(id), Some(seq), "acknowledged message {id:?} lost or renumbered");
    }
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>(), "numbers consecutive, none reused");

    // Numbering continues after the crash, and a client recovers with since.
    let last_before = *seqs.last().unwrap();
    let mut ws = connect_json(server.addr, group).await;
    let (_, seq) = publish_all(&mut ws, &["after the crash".to_owned()], 1).await[0];
    assert_eq!(seq, last_before + 1);
    let (_, replay) = connect_json_with(server.addr, group, &format!("since={}", last_before - 5)).await;
    let replayed: Vec<u64> =
        replay.iter().filter_map(|e| if let ServerEvent::Message(m) = e { Some(m.seq) } else { None }).collect();
    assert_eq!(replayed, (last_before - 4..=last_before + 1).collect::<Vec<_>>());
    server.kill_9();
}
