//! `feedbench serve` with TLS through the built binary: the first two lines, the
//! certificate written for clients (its fingerprint is the one printed), certificate and
//! key files, and every bad input exits 2 naming the file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fb-cli-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn serve(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_feedbench"))
        .args(["serve", "--addr", "127.0.0.1:0", "--rate", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn feedbench serve")
}

/// Runs `serve` with `args` to its end (bad input exits at once).
fn serve_fails(args: &[&str]) -> Output {
    let child = serve(args);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing listens: {out:?}");
    out
}

/// The first two stdout lines of a TLS server: its address and its fingerprint.
fn first_lines(child: &mut Child) -> (String, String) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let mut second = String::new();
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let addr = first
        .trim()
        .strip_prefix("feedbench listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let fp = second
        .trim()
        .strip_prefix("feedbench tls sha256 ")
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_string();
    (addr, fp)
}

fn fingerprint_of(pem: &Path) -> String {
    let der = CertificateDer::from_pem_file(pem).expect("a PEM certificate");
    feedbench_server::tls::fingerprint(&der)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A plain HTTP request to a TLS server: a 400 saying to use https.
fn plaintext_is_refused(addr: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("use https://"), "{text}");
}

#[test]
fn self_signed_certificate_is_written_and_its_fingerprint_printed() {
    let dir = scratch("self");
    let cert = dir.join("cert.pem");
    let mut child = serve(&["--tls", "--cert-out", cert.to_str().unwrap()]);
    let (addr, fp) = first_lines(&mut child);
    assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
    // Written before the first line, so clients can trust it at once.
    assert_eq!(fingerprint_of(&cert), fp);
    plaintext_is_refused(&addr);
    stop(child);
    let _ = std::fs::remove_dir_all(dir);
}

/// A certificate for localhost and its key, in PEM.
fn cert_and_key() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

#[test]
fn certificate_and_key_files_are_served() {
    let dir = scratch("files");
    let (cert_pem, key_pem) = cert_and_key();
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let out = dir.join("out.pem");
    let mut child = serve(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--cert-out",
        out.to_str().unwrap(),
    ]);
    let (addr, fp) = first_lines(&mut child);
    assert_eq!(fingerprint_of(&cert), fp);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&cert).unwrap());
    plaintext_is_refused(&addr);
    stop(child);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_certificates_and_keys_exit_2_naming_the_file() {
    let dir = scratch("bad");
    let (cert_pem, key_pem) = cert_and_key();
    let (_, other_key_pem) = cert_and_key();
    let files = [
        ("cert.pem", cert_pem.as_str()),
        ("key.pem", key_pem.as_str()),
        ("other-key.pem", other_key_pem.as_str()),
        ("junk.pem", "not a certificate\n"),
        (
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let cases: [(&[String], &[&str]); 6] = [
        (
            &[p("missing.pem"), p("key.pem")],
            &["cannot read", "missing.pem"],
        ),
        (
            &[p("junk.pem"), p("key.pem")],
            &["junk.pem", "no PEM CERTIFICATE"],
        ),
        (
            &[p("broken.pem"), p("key.pem")],
            &["broken.pem", "certificate"],
        ),
        (
            &[p("cert.pem"), p("junk.pem")],
            &["junk.pem", "private key"],
        ),
        (
            &[p("cert.pem"), p("missing-key.pem")],
            &["cannot read", "missing-key.pem"],
        ),
        (
            &[p("cert.pem"), p("other-key.pem")],
            &["other-key.pem", "does not match the certificate"],
        ),
    ];
    for (files, wanted) in cases {
        let out = serve_fails(&["--cert", &files[0], "--key", &files[1]]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("feedbench: "), "{err}");
        for w in wanted {
            assert!(err.contains(w), "{files:?}: {err:?} lacks {w:?}");
        }
    }
    // A key without a certificate, and a certificate to write without TLS.
    serve_fails(&["--key", &p("key.pem")]);
    let out = serve_fails(&["--cert-out", &p("x.pem")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cert-out needs --tls"));
    assert!(!dir.join("x.pem").exists());
    let _ = std::fs::remove_dir_all(dir);
}
