//! Clock-offset estimation against real servers on loopback: feedbench's own (one host,
//! so the true offset is 0, or exactly minus an injected skew) and tiny canned servers that
//! lack `GET /time` or answer it wrongly.

#[allow(dead_code)]
mod util;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use feedbench_loadgen::clock::LocalClock;
use feedbench_loadgen::clock_sync::{self, ClockError, ClockOffset, SyncOptions};
use feedbench_loadgen::stats::StatsClient;
use feedbench_loadgen::Target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Slack for the two local clock reads around an exchange and the server's read of its
/// clock, which are not simultaneous with the instants they stand for.
const READ_SLACK_NS: u64 = 100_000;

/// Estimates with a local clock `skew_ns` ahead of the host's against a fresh feedbench
/// server, checks the estimate against the truth (`−skew_ns`: one host, one clock), and
/// checks that a later `GET /time` lies where the corrected local clock says it must.
async fn check_recovers_skew(skew_ns: i64) -> ClockOffset {
    let server = util::start_server(100).await;
    let target = util::target(&server);
    let clock = LocalClock::skewed(skew_ns);
    let opts = SyncOptions {
        clock,
        ..SyncOptions::default()
    };
    let est = clock_sync::estimate(&target, &opts).await.unwrap();
    eprintln!(
        "skew {skew_ns} ns: offset {} ns ± {} ns, min rtt {} ns over {} samples",
        est.offset_ns, est.uncertainty_ns, est.min_rtt_ns, est.samples
    );
    assert_eq!(est.samples, 16);
    assert!(est.min_rtt_ns > 0, "{est:?}");
    assert_eq!(est.uncertainty_ns, est.min_rtt_ns.div_ceil(2), "{est:?}");
    let error = est.offset_ns.abs_diff(-skew_ns);
    assert!(
        error <= est.uncertainty_ns + READ_SLACK_NS,
        "offset {} is {error} ns from {}: beyond ±{} ns + slack",
        est.offset_ns,
        -skew_ns,
        est.uncertainty_ns
    );
    // One warm-up and 16 timed exchanges, all on `/time`.
    assert_eq!(server.stats()["requests"]["time"], 17);

    // The sign convention end to end: the server's clock read during an exchange lies
    // between the corrected local readings around it, within the uncertainty.
    let mut c = StatsClient::new(&target);
    let t0 = est.to_server_ns(clock.now_ns());
    let body = c.get("/time").await.unwrap();
    let t1 = est.to_server_ns(clock.now_ns());
    let n = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["unix_ns"]
        .as_u64()
        .unwrap();
    let margin = est.uncertainty_ns + READ_SLACK_NS;
    assert!(
        t0 - margin <= n && n <= t1 + margin,
        "server clock {n} outside corrected [{t0}, {t1}] ± {margin}"
    );
    util::stop_server(server).await;
    est
}

/// On one host the offset is 0 within its uncertainty.
#[tokio::test]
async fn loopback_offset_is_zero_within_its_uncertainty() {
    check_recovers_skew(0).await;
}

/// A local clock 25 ms ahead is estimated at −25 ms within its uncertainty.
#[tokio::test]
async fn a_clock_25ms_ahead_is_estimated_at_minus_25ms() {
    check_recovers_skew(25_000_000).await;
}

/// A local clock 40 ms behind is estimated at +40 ms within its uncertainty.
#[tokio::test]
async fn a_clock_40ms_behind_is_estimated_at_plus_40ms() {
    check_recovers_skew(-40_000_000).await;
}

/// The number of timed exchanges is clamped to 1..=64, plus one warm-up each time.
#[tokio::test]
async fn sample_count_is_clamped_to_1_through_64() {
    let server = util::start_server(100).await;
    let target = util::target(&server);
    for (asked, timed, requests) in [(0, 1, 2), (1_000, 64, 2 + 65)] {
        let opts = SyncOptions {
            samples: asked,
            ..SyncOptions::default()
        };
        let est = clock_sync::estimate(&target, &opts).await.unwrap();
        assert_eq!(est.samples, timed);
        assert_eq!(server.stats()["requests"]["time"], requests);
    }
    util::stop_server(server).await;
}

/// A server that reads requests (each a head without a body) and answers every one with
/// `answer`, or never if it is `None`; it counts the requests it read.
async fn canned_server(answer: Option<String>) -> (Target, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        // Each test connects once; a few more are allowed, not an endless loop.
        for _ in 0..4 {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_canned(sock, answer.clone(), count.clone()));
        }
    });
    (target, seen)
}

async fn serve_canned(
    mut sock: tokio::net::TcpStream,
    answer: Option<String>,
    count: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    // Ends when the client closes (or breaks) the connection.
    while let Ok(n @ 1..) = sock.read(&mut chunk).await {
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            count.fetch_add(1, Relaxed);
            if let Some(a) = &answer {
                if sock.write_all(a.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A canned HTTP/1.1 answer with a JSON body.
fn answer(status: &str, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// A server without `/time` (feedbench's own 404 for an unknown path) is `Unsupported`
/// after the first request: nothing more is asked.
#[tokio::test]
async fn a_server_without_time_is_unsupported() {
    let (target, seen) = canned_server(answer(
        "404 Not Found",
        r#"{"error":"no such path: /time"}"#,
    ))
    .await;
    let err = clock_sync::estimate(&target, &SyncOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClockError::Unsupported), "{err:?}");
    assert_eq!(seen.load(Relaxed), 1);
}

/// Another status, or a body that is not `{"unix_ns":N}`, is an error naming it.
#[tokio::test]
async fn a_wrong_answer_is_an_error_naming_it() {
    let (target, _) = canned_server(answer("503 Service Unavailable", r#"{"error":"x"}"#)).await;
    let err = clock_sync::estimate(&target, &SyncOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClockError::Status { status: 503, body } if body == r#"{"error":"x"}"#),
        "{err:?}"
    );
    for body in [r#"{"unix_ms":5}"#, r#"{"unix_ns":-1}"#, "12345"] {
        let (target, _) = canned_server(answer("200 OK", body)).await;
        let err = clock_sync::estimate(&target, &SyncOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ClockError::Body(_)), "{body}: {err:?}");
    }
}

/// A server that never answers costs one exchange timeout, not a hang.
#[tokio::test]
async fn a_silent_server_times_out() {
    let (target, _) = canned_server(None).await;
    let opts = SyncOptions {
        exchange_timeout: Duration::from_millis(200),
        ..SyncOptions::default()
    };
    let err = clock_sync::estimate(&target, &opts).await.unwrap_err();
    assert!(
        matches!(err, ClockError::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
}
