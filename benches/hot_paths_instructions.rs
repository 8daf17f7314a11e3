//! Instruction counts of feedbench's hot paths (the same ones as `hot_paths.rs`), measured
//! under Valgrind's callgrind by gungraun: one run per bench, counted exactly, so a change
//! of 1–2% is visible where the wall-clock criterion gate needs 5–10%.
//!
//! Needs Valgrind (Debian's `valgrind`) and the `gungraun-runner` binary of the same
//! version as the `gungraun` crate; `scripts/instructions-gate.sh` installs the runner and
//! runs the gate (save a baseline on the base revision, compare the candidate against it).
//! Each bench's setup (building a hub, publishing events, making subscribers) runs outside
//! the counted function, and each returns what it was given, so that dropping it (freeing
//! a ring of 2,000 events) is not counted either.

use std::hint::black_box;

use feedbench_server::event::{encode_sse, Event};
use feedbench_server::follow::{Follower, Next};
use feedbench_server::hub::{FeedConfig, Hub};
use gungraun::{library_benchmark, library_benchmark_group, main};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;

const TS: u64 = 1_795_312_099_346_019_349;

fn hub_with(events: usize, retain: usize) -> Hub {
    let hub = Hub::new(
        FeedConfig {
            rate_hz: 0.0,
            payload_bytes: 64,
        },
        retain,
    );
    hub.publish(&vec![TS; events], 64);
    hub
}

#[library_benchmark]
#[bench::payload_64(64)]
#[bench::payload_1024(1024)]
fn encode_event(payload: usize) -> Event {
    black_box(Event::new(1_000_001, TS, payload))
}

#[library_benchmark]
#[bench::events_1(args = (1), setup = poll_setup)]
#[bench::events_100(args = (100), setup = poll_setup)]
#[bench::events_1000(args = (1_000), setup = poll_setup)]
fn poll_response((hub, after): (Hub, u64)) -> (Hub, usize) {
    let batch = hub.read_after(black_box(after), 10_000);
    let n = black_box(feedbench_server::poll::encode_body(&batch, after).len());
    (hub, n)
}

fn poll_setup(n: u64) -> (Hub, u64) {
    (hub_with(2_000, 10_000), 2_000 - n)
}

#[library_benchmark]
#[bench::ws(setup = one_event)]
fn push_frame_ws(ev: Event) -> usize {
    let mut out = Vec::with_capacity(256);
    let frame = Frame::message(ev.json_bytes(), OpCode::Data(Data::Text), true);
    frame
        .format(&mut out)
        .expect("writing into a Vec cannot fail");
    black_box(out.len())
}

#[library_benchmark]
#[bench::sse(setup = one_event)]
fn push_frame_sse(ev: Event) -> usize {
    black_box(encode_sse(ev.seq, ev.json_str()).len())
}

fn one_event() -> Event {
    Event::new(123_456, TS, 64)
}

#[library_benchmark]
#[bench::subscribers_1000(setup = fan_out_setup)]
fn hub_fan_out((hub, mut followers): (Hub, Vec<Follower>)) -> (Hub, Vec<Follower>) {
    hub.publish(&[TS], 64);
    let mut delivered = 0usize;
    for f in &mut followers {
        if let Next::Send(events) = f.next(&hub) {
            delivered += events.len();
        }
    }
    assert_eq!(delivered, followers.len());
    (hub, followers)
}

fn fan_out_setup() -> (Hub, Vec<Follower>) {
    let hub = hub_with(0, 100_000);
    let followers = (0..1_000)
        .map(|_| Follower::new(&hub, None, 4_096))
        .collect();
    (hub, followers)
}

#[library_benchmark]
#[bench::values_1000(setup = new_histogram)]
fn histogram_record(mut h: hdrhistogram::Histogram<u64>) -> hdrhistogram::Histogram<u64> {
    for i in 0..1_000u64 {
        h.record(black_box(50 + i * 37)).expect("in range");
    }
    h
}

fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

#[library_benchmark]
#[bench::event(setup = event_json)]
fn client_parse_event(json: Vec<u8>) -> bool {
    black_box(feedbench_loadgen::event::parse_event(black_box(&json)).is_ok())
}

fn event_json() -> Vec<u8> {
    one_event().json().to_vec()
}

#[library_benchmark]
#[bench::poll_body_100(setup = poll_body)]
fn client_parse_poll_body(body: Vec<u8>) -> bool {
    black_box(feedbench_loadgen::event::parse_poll_body(black_box(&body)).is_ok())
}

fn poll_body() -> Vec<u8> {
    let hub = hub_with(100, 1_000);
    feedbench_server::poll::encode_body(&hub.read_after(0, 100), 0).to_vec()
}

library_benchmark_group!(
    name = hot_paths;
    benchmarks = encode_event, poll_response, push_frame_ws, push_frame_sse, hub_fan_out,
        histogram_record, client_parse_event, client_parse_poll_body
);

main!(library_benchmark_groups = hot_paths);
