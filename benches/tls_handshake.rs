//! Criterion bench of a TLS 1.3 handshake in memory, full and resumed, with the server's and
//! the load generator's own rustls configurations (ring provider, the server's self-signed
//! ECDSA P-256 certificate and one session ticket per handshake, the client's session
//! store), timing each side's work apart: what one handshake costs the server and the
//! client in CPU, without sockets or a scheduler in the way.
//!
//! Each iteration is one whole handshake, ClientHello to the client having stored the
//! server's session ticket; the bench ids `full/server`, `full/client`, `resumed/server`,
//! `resumed/client` time only that side's calls (single-threaded, so wall time is CPU
//! time). Run `cargo bench --bench tls_handshake`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use feedbench_loadgen::tls::{client_config, TlsOptions, Trust, ALPN_HTTP_1_1};
use feedbench_server::tls::TlsSettings;
use rustls::pki_types::ServerName;
use rustls::{
    ClientConfig, ClientConnection, Connection, HandshakeKind, ServerConfig, ServerConnection,
};

/// Which side's calls an iteration times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// Moves everything `from` wants to send into `to`, which processes it; returns the time
/// `from` spent writing and the time `to` spent reading and processing.
fn flight(from: &mut Connection, to: &mut Connection, buf: &mut Vec<u8>) -> (Duration, Duration) {
    buf.clear();
    let t = Instant::now();
    while from.wants_write() {
        from.write_tls(buf).expect("writing to a Vec cannot fail");
    }
    let write = t.elapsed();
    let t = Instant::now();
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd)
            .expect("reading from a slice cannot fail");
        to.process_new_packets()
            .expect("the peer accepts the flight");
    }
    (write, t.elapsed())
}

/// One handshake, until neither side has anything left to send (the client has processed
/// the session ticket); returns (server time, client time, kind).
fn handshake(
    server_config: &Arc<ServerConfig>,
    client_config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> (Duration, Duration, Option<HandshakeKind>) {
    let mut buf = Vec::with_capacity(8192);
    let t = Instant::now();
    let mut client = Connection::Client(
        ClientConnection::new(client_config.clone(), name.clone())
            .expect("the client configuration is valid"),
    );
    let mut client_time = t.elapsed();
    let t = Instant::now();
    let mut server = Connection::Server(
        ServerConnection::new(server_config.clone()).expect("the server configuration is valid"),
    );
    let mut server_time = t.elapsed();
    // A TLS 1.3 handshake with a ticket is 3 flights and the ticket; 8 rounds is plenty.
    for _ in 0..8 {
        if !client.wants_write() && !server.wants_write() {
            break;
        }
        let (c, s) = flight(&mut client, &mut server, &mut buf);
        let (s2, c2) = flight(&mut server, &mut client, &mut buf);
        client_time += c + c2;
        server_time += s + s2;
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    (server_time, client_time, client.handshake_kind())
}

fn tls_handshake(c: &mut Criterion) {
    let server = TlsSettings::self_signed("127.0.0.1:0".parse().expect("an address"))
        .expect("a self-signed certificate")
        .config;
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let mut g = c.benchmark_group("tls_handshake");
    for (kind, resumption) in [("full", false), ("resumed", true)] {
        let opts = TlsOptions {
            trust: Trust::Insecure,
            resumption,
        };
        let client = client_config(&opts, ALPN_HTTP_1_1, 1).expect("a client configuration");
        // Primes the session store, and checks the kind of handshake measured.
        handshake(&server, &client, &name);
        let (_, _, got) = handshake(&server, &client, &name);
        let want = if resumption {
            HandshakeKind::Resumed
        } else {
            HandshakeKind::Full
        };
        assert_eq!(got, Some(want), "{kind}");
        for (side, label) in [(Side::Server, "server"), (Side::Client, "client")] {
            g.bench_function(format!("{kind}/{label}"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let (s, c, _) = handshake(&server, &client, &name);
                            if side == Side::Server {
                                s
                            } else {
                                c
                            }
                        })
                        .sum()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, tls_handshake);
criterion_main!(benches);
