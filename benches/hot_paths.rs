//! Criterion benches for feedbench's hot paths: what the server does per event and per
//! subscriber, and what the load generator does per received event.
//!
//! Run `cargo bench --bench hot_paths -- --save-baseline main` on the base revision and
//! `cargo bench --bench hot_paths -- --baseline main` on the candidate; then
//! `scripts/criterion-gate.sh` fails when an estimate got slower than its threshold.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use feedbench_server::event::{encode_sse, Event};
use feedbench_server::follow::{Follower, Next};
use feedbench_server::hub::{FeedConfig, Hub};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;

const TS: u64 = 1_795_312_099_346_019_349;

fn encode_event(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_event");
    for payload in [64usize, 1024] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(payload), &payload, |b, &p| {
            let mut seq = 1_000_000u64;
            b.iter(|| {
                seq += 1;
                black_box(Event::new(seq, TS, p))
            })
        });
    }
    g.finish();
}

fn poll_response(c: &mut Criterion) {
    let hub = Hub::new(
        FeedConfig {
            rate_hz: 0.0,
            payload_bytes: 64,
        },
        10_000,
    );
    hub.publish(&vec![TS; 2_000], 64);
    let mut g = c.benchmark_group("poll_response");
    for n in [1u64, 100, 1_000] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let after = 2_000 - n;
            b.iter(|| {
                let batch = hub.read_after(black_box(after), 10_000);
                black_box(feedbench_server::poll::encode_body(&batch, after))
            })
        });
    }
    g.finish();
}

fn push_frames(c: &mut Criterion) {
    let ev = Event::new(123_456, TS, 64);
    let mut g = c.benchmark_group("push_frame");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ws", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            let frame = Frame::message(ev.json_bytes(), OpCode::Data(Data::Text), true);
            frame
                .format(&mut out)
                .expect("writing into a Vec cannot fail");
            black_box(out.len())
        })
    });
    g.bench_function("sse", |b| {
        b.iter(|| black_box(encode_sse(ev.seq, ev.json_str())))
    });
    g.finish();
}

fn hub_fan_out(c: &mut Criterion) {
    const SUBSCRIBERS: usize = 10_000;
    let mut g = c.benchmark_group("hub_fan_out");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    g.bench_function("10000_subscribers", |b| {
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 64,
            },
            100_000,
        );
        let mut followers: Vec<Follower> = (0..SUBSCRIBERS)
            .map(|_| Follower::new(&hub, None, 4_096))
            .collect();
        b.iter(|| {
            hub.publish(&[TS], 64);
            let mut delivered = 0usize;
            for f in &mut followers {
                if let Next::Send(events) = f.next(&hub) {
                    delivered += events.len();
                }
            }
            assert_eq!(delivered, SUBSCRIBERS);
        })
    });
    g.finish();
}

fn histogram_record(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_record");
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("1000_values", |b| {
        b.iter_batched_ref(
            || {
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                    .expect("valid bounds")
            },
            |h| {
                for i in 0..1_000u64 {
                    h.record(black_box(50 + i * 37)).expect("in range");
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn client_parse(c: &mut Criterion) {
    let ev = Event::new(123_456, TS, 64);
    let json = ev.json().to_vec();
    let hub = Hub::new(
        FeedConfig {
            rate_hz: 0.0,
            payload_bytes: 64,
        },
        1_000,
    );
    hub.publish(&vec![TS; 100], 64);
    let body = feedbench_server::poll::encode_body(&hub.read_after(0, 100), 0);
    let mut g = c.benchmark_group("client_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("event", |b| {
        b.iter(|| black_box(feedbench_loadgen::event::parse_event(black_box(&json))))
    });
    // An SSE stream's events, one per feed as one read brings them, through one parser.
    let sse: Vec<Vec<u8>> = (0..100u64)
        .map(|i| {
            let ev = Event::new(123_456 + i, TS, 64);
            encode_sse(ev.seq, ev.json_str()).to_vec()
        })
        .collect();
    let mut parser = feedbench_loadgen::sse_parser::SseParser::new(1 << 20);
    g.throughput(Throughput::Elements(100));
    g.bench_function("sse_events_100", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for frame in &sse {
                let fed = parser.feed(black_box(frame), |e| bytes += e.data.len());
                assert!(fed.is_ok());
            }
            black_box(bytes)
        })
    });
    g.bench_function("poll_body_100", |b| {
        b.iter(|| {
            black_box(feedbench_loadgen::event::parse_poll_body(black_box(&body)).map(|p| p.next))
        })
    });
    // One long-poll delivery as the load generator's receive loop takes it: the answer's
    // head, then the one event of its body, each event checked and handed on.
    hub.publish(&[TS], 64);
    let one = feedbench_server::poll::encode_body(&hub.read_after(100, 1), 100);
    // The head as the server writes it (`direct::json_head`).
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         content-length: {}\r\ndate: Wed, 02 Dec 2026 04:50:00 GMT\r\n\r\n",
        one.len()
    )
    .into_bytes();
    answer.extend_from_slice(&one);
    g.throughput(Throughput::Elements(1));
    g.bench_function("long_poll_answer_1", |b| {
        b.iter(|| {
            let bytes = black_box(&answer[..]);
            let head = feedbench_loadgen::http::parse_head(bytes)
                .ok()
                .flatten()
                .expect("a whole head");
            let mut seqs = 0;
            let a = feedbench_loadgen::event::read_answer(&bytes[head.head_len..], |ev, _| {
                seqs += ev.seq
            });
            black_box((a.map(|a| a.next), seqs))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = encode_event, poll_response, push_frames, hub_fan_out, histogram_record, client_parse
}
criterion_main!(benches);
