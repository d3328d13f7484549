//! Heartbeat, slow readers and shutdown: how connections end.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::{close, ClientCommand, MessageId, SUBPROTOCOL};
use support::*;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;
use uuid::Uuid;

/// Reads a server's unmasked frames from a raw socket without ever answering,
/// returning the opcodes seen and the close code, if a close frame came.
async fn read_frames_silently(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, Option<u16>) {
    let mut buffer = Vec::new();
    let _ = stream.read_to_end(&mut buffer).await;
    let (mut opcodes, mut code, mut at) = (Vec::new(), None, 0);
    while at + 2 <= buffer.len() {
        let opcode = buffer[at] & 0x0f;
        let (len, header) = match buffer[at + 1] & 0x7f {
            126 => (u16::from_be_bytes([buffer[at + 2], buffer[at + 3]]) as usize, 4),
            127 => panic!("unexpectedly large frame"),
            len => (len as usize, 2),
        };
        let payload = &buffer[at + header..at + header + len];
        if opcode == 0x8 && payload.len() >= 2 {
            code = Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        opcodes.push(opcode);
        at += header + len;
    }
    (opcodes, code)
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_pinged_then_closed_by_the_heartbeat() {
    let server = start_default().await; // pings every 15 s, closes after 45 s
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(server.local_addr(), "quiet", Uuid::new_v4())).await.unwrap();
    let MaybeTlsStream::Plain(mut tcp) = ws.into_inner() else { panic!("plain TCP expected") };
    let started = tokio::time::Instant::now();
    let (opcodes, code) = read_frames_silently(&mut tcp).await;
    assert!(started.elapsed() >= Duration::from_secs(45), "closed after {:?}", started.elapsed());
    assert_eq!(opcodes.iter().filter(|&&op| op == 0x9).count(), 2, "pings at 15, 30 s: {opcodes:?}");
    assert_eq!(code, Some(close::HEARTBEAT_TIMEOUT));
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_pings_stays_connected() {
    let server = start_default().await;
    let mut ws = connect_json(server.local_addr(), "alive").await;
    // Reading answers the server's pings (tungstenite replies with pongs).
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut pings = 0;
    while let Ok(frame) = tokio::time::timeout_at(until, futures_util::StreamExt::next(&mut ws)).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("only pings expected while idle, got {other:?}"),
        }
    }
    assert!(pings >= 7, "{pings} pings in 120 s");
    // The round trip goes through the history writer's thread, which paused
    // time cannot wait for.
    tokio::time::resume();
    assert_round_trip(&mut ws, "still connected").await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_service_restart() {
    let server = start_default().await;
    let addr = server.local_addr();
    let mut json = connect_json(addr, "bye").await;
    let mut raw = connect_raw(addr, "bye").await;
    let mut other = connect_json(addr, "elsewhere").await;
    let stopping = tokio::spawn(server.shutdown());
    for ws in [&mut json, &mut raw, &mut other] {
        assert_eq!(close_code(ws).await, close::SERVICE_RESTART);
    }
    tokio::time::timeout(PATIENCE, stopping).await.expect("shutdown finished").unwrap();
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let server = start_default().await;
    let addr = server.local_addr();
    for mut ws in [connect_json(addr, "goodbye").await, connect_raw(addr, "goodbye").await] {
        ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).await.unwrap();
        assert_eq!(close_code(&mut ws).await, close::NORMAL, "the server echoes the close");
    }
    server.shutdown().await;
}

/// SIGTERM ends the process within the close grace (and a little), whatever
/// its sockets do: half-sent requests, sockets that never read, replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_in_time_whatever_the_sockets_do() {
    use tokio::io::AsyncWriteExt;
    let database = std::env::temp_dir().join(format!("roomcast-sigterm-{}.sqlite3", Uuid::new_v4()));
    let addr = free_addr();
    let args = ["--close-grace", "1s", "--handshake-timeout", "60s", "--publish-rate", "0"];
    let server = ServerProcess::start(addr, &database, &args).await;
    // A history long enough that replays stall on clients that do not read.
    let mut publisher = connect_json(addr, "stalled").await;
    let big = "z".repeat(60 * 1024);
    publish_all(&mut publisher, &vec![big; 200], 20).await;
    let mut half_sent = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: local").await.unwrap();
        half_sent.push(stream);
    }
    let mut stalled = Vec::new();
    for n in 0..20u8 {
        let tcp = tcp_from([127, 0, 1, n], addr, Some(4096)).await;
        let url = format!("{}&since=0", ws_url(addr, "stalled", Uuid::new_v4()));
        stalled.push(upgrade_over(tcp, &url, &[]).await.unwrap());
    }
    // Members that never read and keep sending pings: one as fast as it can,
    // one within the control-frame rate. Once the flood has gone on for a
    // while (or been cut off), the fast one sends messages, each of which
    // queues two frames for it at once (the message and its ack).
    let mut pingers = Vec::new();
    // The fast one is alone in its group: nothing of its own waits to be
    // written when its pongs start to.
    for (n, group, every) in [(0u8, "flooded", Duration::ZERO), (1, "stalled", Duration::from_millis(20))] {
        let tcp = tcp_from([127, 0, 2, n], addr, Some(4096)).await;
        let json = [("Sec-WebSocket-Protocol", SUBPROTOCOL)];
        pingers.push(keep_pinging(upgrade_by_hand(tcp, group, Uuid::new_v4(), &json).await, every));
    }
    let flood = &pingers[0];
    eventually(|| flood.task.is_finished() || flood.sent.load(Ordering::Relaxed) >= 32 << 20).await;
    for _ in 0..5 {
        let send = ClientCommand::Send { id: MessageId(Uuid::new_v4()), text: "still here".into() };
        let _ = flood.more.send(text_frame(&send.encode()));
    }
    publish_all(&mut publisher, &["after the flood".to_owned()], 1).await;
    let code = server.terminate(Duration::from_secs(1) + Duration::from_secs(1)).await;
    assert_eq!(code, Some(0));
    for pinger in pingers {
        pinger.task.abort();
    }
    drop((half_sent, stalled));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
}

/// Settings that would panic or make no sense are refused at start with one
/// line naming the flag and exit code 2; zero stays allowed where it means
/// "no limit".
#[tokio::test]
async fn invalid_configuration_is_refused_at_start() {
    for (flag, value) in [
        ("--ping-interval", "0"),
        ("--idle-timeout", "0"),
        ("--retention-interval", "0"),
        ("--max-message-bytes", "0"),
        ("--outbound-queue", "0"),
        ("--publish-queue", "0"),
        ("--publish-burst", "0"),
        ("--idle-timeout", "10s"),
        ("--secret", "short"),
        ("--handshake-timeout", "0"),
        ("--max-connections", "0"),
        ("--outbound-queue-bytes", "0"),
        ("--publish-queue-bytes", "0"),
        ("--publish-rate-per-ip", "0"),
        ("--retention-bytes", "1000"),
        ("--trusted-proxies", "10.0.0.0/33"),
        ("--max-groups", "many"),
        ("--handshake-timeout", "150000000000000d"),
        ("--ping-interval", "2d"),
        ("--idle-timeout", "25h"),
        ("--close-grace", "2d"),
        ("--retention-interval", "2d"),
        ("--retention-age", "3654d"),
    ] {
        let stderr = refused_at_start(&[flag, value], &[]).await;
        assert!(stderr.contains(flag.trim_start_matches("--")), "{flag} {value}: {stderr}");
    }
}

/// A member that sends pings and never reads, as [`keep_pinging`] runs it.
struct Pinger {
    task: tokio::task::JoinHandle<()>,
    /// Bytes its socket took.
    sent: Arc<AtomicUsize>,
    /// More frames to send after what waits.
    more: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

/// Sends pings on `socket` every `every` (back to back when zero), reading
/// nothing, until aborted or the socket fails; frames the socket does not
/// take wait whole, in order.
fn keep_pinging(socket: tokio::net::TcpStream, every: Duration) -> Pinger {
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    let (more, mut extra) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let task = tokio::spawn(async move {
        let ping = ping_frames(if every.is_zero() { 512 } else { 1 }, 125);
        let mut unsent = Vec::new();
        loop {
            while let Ok(frames) = extra.try_recv() {
                unsent.extend_from_slice(&frames);
            }
            if unsent.len() < 1 << 20 {
                unsent.extend_from_slice(&ping);
            }
            match socket.try_write(&unsent) {
                Ok(written) => {
                    unsent.drain(..written);
                    counted.fetch_add(written, Ordering::Relaxed);
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            tokio::time::sleep(every.max(Duration::from_millis(1))).await;
        }
    });
    Pinger { task, sent, more }
}

/// Runs the binary with `args` and `env`, which must refuse to start: exit
/// code 2, one line on stderr, no panic. Returns that line.
async fn refused_at_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["--listen", "127.0.0.1:0", "--history", "memory", "--static-dir", "/nonexistent"])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "off")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} {env:?}: {stderr}");
    stderr
}

/// `--secret-file` and `--api-key-file` (or their environment variables)
/// keep the secrets out of the process list; each conflicts with its plain
/// flag, and a file that cannot be read is named.
#[tokio::test]
async fn secrets_come_from_files_out_of_the_process_list() {
    const KEY: &str = "publish-api-test-key-0123456789abcdef";
    let dir = std::env::temp_dir().join(format!("roomcast-secret-files-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (secret_file, key_file) = (dir.join("secret"), dir.join("api-key"));
    std::fs::write(&secret_file, format!("{TEST_SECRET}\n")).unwrap();
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let (secret_path, key_path) = (secret_file.to_str().unwrap(), key_file.to_str().unwrap());
    let args = ["--secret-file", secret_path, "--api-key-file", key_path];
    let server = ServerProcess::start_logged(free_addr(), &dir.join("history.sqlite3"), &args).await;
    let addr = server.addr;
    assert_eq!(http_request(addr, "/api/groups/lobby/messages", &[]).await.0, 200, "a token of the file's secret");
    let bearer = format!("Bearer {KEY}");
    let (status, body) =
        raw_request(addr, "POST", "/api/groups/lobby/messages", &[("Authorization", &bearer)], r#"{"text":"hi"}"#)
            .await;
    assert_eq!(status, 201, "the file's API key: {body}");
    let command_line = std::fs::read(format!("/proc/{}/cmdline", server.child.id())).unwrap();
    let command_line = String::from_utf8_lossy(&command_line);
    assert!(!command_line.contains(TEST_SECRET) && !command_line.contains(KEY), "{command_line}");
    server.stop_for_log().await;

    let secret = ["--secret", TEST_SECRET];
    for (args, env, named) in [
        (&[secret.as_slice(), &["--secret-file", secret_path]].concat(), vec![], "--secret-file"),
        (&vec!["--secret-file", secret_path], vec![("ROOMCAST_SECRET", TEST_SECRET)], "--secret-file"),
        (&vec!["--api-key", KEY, "--api-key-file", key_path], vec![], "--api-key-file"),
        (&vec!["--secret-file", "/nonexistent/secret"], vec![], "--secret-file"),
        (&vec![], vec![("ROOMCAST_API_KEY_FILE", "/nonexistent/key")], "--api-key-file"),
    ] {
        let stderr = refused_at_start(args, &env).await;
        assert!(stderr.contains(named), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains(TEST_SECRET) && !stderr.contains(KEY), "no secret in the error: {stderr}");
    }
    assert!(refused_at_start(&["--secret-file", "/nonexistent/secret"], &[]).await.contains("cannot read"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// What the operator should know is logged once at start: a secret given
/// while anyone may still mint identities, and the Host rule of a wildcard
/// listen address without a name to answer for.
#[tokio::test]
async fn start_up_warnings_are_logged_once() {
    let dir = std::env::temp_dir().join(format!("roomcast-warnings-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, TEST_SECRET).unwrap();
    let database = dir.join("history.sqlite3");
    let wildcard = std::net::SocketAddr::from(([0, 0, 0, 0], free_addr().port()));
    let memory = ["--history", "memory"];
    for (listen, args, warned) in [
        (wildcard, vec!["--secret-file", secret_file.to_str().unwrap()], true),
        (free_addr(), vec!["--secret", TEST_SECRET, "--identities", "off"], false),
        (free_addr(), vec![], false),
    ] {
        let server = ServerProcess::start_logged(listen, &database, &[memory.as_slice(), &args].concat()).await;
        let log = server.stop_for_log().await;
        let expected = usize::from(warned);
        assert_eq!(log.matches("--identities is on").count(), expected, "{args:?}: {log}");
        assert_eq!(log.matches("without --public-url or --allowed-hosts").count(), expected, "{listen}: {log}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
