#!/usr/bin/env python3
"""TLS records in a packet capture, decrypted with a key log, against feedbench's results.

Used by scripts/verify-tls-pcap.sh (read it for the set-up):

    tls_pcap.py CAPTURE KEYLOG PORT RUNS WORKDIR

CAPTURE is a pcap of the server's port on loopback; KEYLOG the clients' SSLKEYLOGFILE;
RUNS lines of `NAME SOURCE-ADDRESS`, the results of each in WORKDIR/NAME.json.

Each TCP connection (client address and port, and a generation a new SYN starts) is
reassembled direction by direction by sequence number, so a byte is counted once however
often it was sent. Its TLS records are walked by their 5-byte headers and every encrypted
one (outer type 23) is decrypted with the secrets the key log holds for the connection's
ClientHello random (TLS 1.3: handshake traffic secret, then application traffic secret 0;
a record that does not open with the current key opens with the next one, its sequence
number starting at 0). A record is *application data* when its inner content type is 23:
its plaintext is the plaintext layer and the rest (5 B header, 1 B inner type, 16 B AEAD
tag, padding) the tls layer. Every other record, whole, is the handshake layer: the
cleartext ClientHello and ServerHello, change_cipher_spec, the encrypted handshake flights,
session tickets, alerts (close_notify). That is what the load generator calls handshake
bytes (loadgen/src/counting.rs: a record read is application data when it yields
plaintext, a record written inside a plaintext write; every other one is handshake).

Exit 0 when every figure matches, 1 on a mismatch, 2 on a set-up error.
"""

import hashlib
import hmac
import json
import struct
import sys
from collections import defaultdict

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

# TLS 1.3 cipher suites: id -> (hash, key length, AEAD).
SUITES = {
    0x1301: (hashlib.sha256, 16, AESGCM),
    0x1302: (hashlib.sha384, 32, AESGCM),
    0x1303: (hashlib.sha256, 32, ChaCha20Poly1305),
}
# The per-record overhead of an application-data record without padding: 5 B header,
# 1 B inner content type, 16 B AEAD tag.
RECORD_OVERHEAD = 22


class SetupError(Exception):
    """The capture or key log cannot be used (exit 2)."""


def hkdf_expand_label(hash_fn, secret, label, length):
    """RFC 8446 §7.1 HKDF-Expand-Label with an empty context."""
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hash_fn).digest()
        out += block
        i += 1
    return out[:length]


class Direction:
    """One direction's traffic keys, tried in order, and the current one's sequence."""

    def __init__(self, suite, secrets):
        hash_fn, key_len, aead = SUITES[suite]
        self.keys = [
            (
                aead(hkdf_expand_label(hash_fn, s, b"key", key_len)),
                hkdf_expand_label(hash_fn, s, b"iv", 12),
            )
            for s in secrets
        ]
        self.index, self.seq = 0, 0

    def open(self, header, body):
        """The inner plaintext of one encrypted record, None if no key opens it."""
        while self.index < len(self.keys):
            aead, iv = self.keys[self.index]
            nonce = bytes(a ^ b for a, b in zip(iv, self.seq.to_bytes(12, "big")))
            try:
                plain = aead.decrypt(nonce, body, header)
                self.seq += 1
                return plain
            except Exception:  # InvalidTag: the next key's turn.
                self.index, self.seq = self.index + 1, 0
        return None


def read_pcap(path, port):
    """Connections' segments: {(ip, port, gen): {"up": {seq: data}, "down": ..., isn}}."""
    data = open(path, "rb").read()
    if len(data) < 24:
        raise SetupError(f"{path}: not a pcap file")
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    conns = {}
    generation = {}
    off = 24
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if incl != orig:
            raise SetupError("the capture cut packets short (snap length); capture with -s 0")
        ip = {1: pkt[14:], 113: pkt[16:]}.get(linktype, pkt[4:])
        if not ip or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport = struct.unpack(">HH", tcp[:4])
        seq = struct.unpack(">I", tcp[4:8])[0]
        flags = tcp[13]
        payload = bytes(tcp[(tcp[12] >> 4) * 4:])
        up = dport == port
        client = (ip[12:16], sport) if up else (ip[16:20], dport)
        syn, ack = flags & 0x02, flags & 0x10
        if syn:
            if up and not ack:
                generation[client] = generation.get(client, 0) + 1
            key = (*client, generation.get(client, 0))
            c = conns.setdefault(key, {"up": {}, "down": {}, "isn": {}})
            c["isn"]["up" if up else "down"] = seq
            continue
        if not payload:
            continue
        key = (*client, generation.get(client, 0))
        c = conns.setdefault(key, {"up": {}, "down": {}, "isn": {}})
        c["up" if up else "down"][seq] = payload
    return conns


def reassemble(segments, isn):
    """The direction's byte stream: segments in sequence order from ISN + 1, each byte once."""
    if isn is None:
        raise SetupError("a connection's SYN is missing from the capture")
    out = bytearray()
    for seq, data in sorted(segments.items(), key=lambda kv: (kv[0] - isn - 1) % 2**32):
        rel = (seq - isn - 1) % 2**32
        if rel > len(out):
            raise SetupError(f"a gap of {rel - len(out)} bytes in a TCP stream (dropped packets)")
        out += data[len(out) - rel:]
    return bytes(out)


def records(stream):
    """(outer type, header, body) of each whole record, and the bytes of a cut-off tail."""
    out, i = [], 0
    while i + 5 <= len(stream):
        n = struct.unpack(">H", stream[i + 3:i + 5])[0]
        if i + 5 + n > len(stream):
            break
        out.append((stream[i], stream[i:i + 5], stream[i + 5:i + 5 + n]))
        i += 5 + n
    return out, len(stream) - i


def read_keylog(path):
    keys = defaultdict(dict)
    for line in open(path):
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            keys[bytes.fromhex(parts[1])][parts[0]] = bytes.fromhex(parts[2])
    return keys


def hello(rec, kind):
    """(random, cipher suite) of a ClientHello (kind 1) or ServerHello (kind 2) record."""
    typ, _, body = rec
    if typ != 22 or body[0] != kind:
        raise SetupError(f"a connection does not start with a {'Client' if kind == 1 else 'Server'}Hello")
    random = body[6:38]
    if kind == 1:
        return random, None
    sid = body[38]
    return random, struct.unpack(">H", body[39 + sid:41 + sid])[0]


class Layers:
    """One direction's figures."""

    def __init__(self):
        self.wire = self.plaintext = self.tls = self.handshake = self.records = 0
        self.odd_records = 0  # application-data records whose overhead is not 22 B
        self.tail = 0  # bytes of a record the connection ended inside

    def add(self, other):
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def walk(stream, direction, ws_frames):
    """The layers of one direction's stream; ws frames (one record each) into ws_frames."""
    layers = Layers()
    layers.wire = len(stream)
    recs, layers.tail = records(stream)
    layers.handshake += layers.tail
    for typ, header, body in recs:
        whole = 5 + len(body)
        if typ != 23:
            layers.handshake += whole
            continue
        inner = direction.open(header, body) if direction else None
        if inner is None:
            raise SetupError("a record does not decrypt with the key log's secrets")
        stripped = inner.rstrip(b"\x00")
        content_type, plain = stripped[-1], stripped[:-1]
        if content_type != 23:
            layers.handshake += whole
            continue
        layers.records += 1
        layers.plaintext += len(plain)
        layers.tls += whole - len(plain)
        layers.odd_records += whole - len(plain) != RECORD_OVERHEAD
        if ws_frames is not None and plain[:1] == b"\x81" and plain[1] < 126:
            ws_frames.append((whole, len(plain), 2 + plain[1]))
    return layers


def main():
    cap, keylog, port, runs_file, work = sys.argv[1:6]
    port = int(port)
    keys = read_keylog(keylog)
    runs = {}
    for line in open(runs_file):
        name, addr = line.split()
        runs[bytes(int(x) for x in addr.split("."))] = name
    figures = {name: {"up": Layers(), "down": Layers(), "conns": 0, "ws": []} for name in runs.values()}
    for (ip, _, _), c in read_pcap(cap, port).items():
        name = runs.get(ip)
        if name is None:
            continue  # the load generator's own connections, from 127.0.0.1
        up = reassemble(c["up"], c["isn"].get("up"))
        down = reassemble(c["down"], c["isn"].get("down"))
        f = figures[name]
        f["conns"] += 1
        if not up:
            continue
        client_random, _ = hello(records(up)[0][0], 1)
        _, suite = hello(records(down)[0][0], 2) if down else (None, None)
        secrets = keys.get(client_random)
        dirs = {"up": None, "down": None}
        if suite is not None:
            if suite not in SUITES or not secrets:
                raise SetupError(f"no key log entry (or an unknown cipher suite {suite:#06x}) for a connection of {name}")
            labels = {"up": "CLIENT", "down": "SERVER"}
            for d, who in labels.items():
                dirs[d] = Direction(suite, [secrets[f"{who}_HANDSHAKE_TRAFFIC_SECRET"], secrets[f"{who}_TRAFFIC_SECRET_0"]])
        ws = f["ws"] if name.startswith("ws-h1.1") else None
        f["up"].add(walk(up, dirs["up"], None))
        f["down"].add(walk(down, dirs["down"], ws))

    ok = True
    print(f"{'run':<28} {'dir':<4} {'conns':>5} {'wire':>9} {'plaintext':>9} {'records':>7} {'tls':>7} {'handshake':>9}  verdict")
    for name, f in figures.items():
        result = json.load(open(f"{work}/{name}.json"))["scenarios"][0]
        run_tls = (result.get("stack") or {}).get("run_tls")
        if run_tls is None:
            raise SetupError(f"{name}: the results have no stack.run_tls")
        split = result["stack"]["split"]
        for d, total in (("up", "total_up"), ("down", "total_down")):
            p, r = f[d], run_tls[d]
            checks = {
                "wire": p.wire == result["bytes"][total],
                "plaintext": p.plaintext == r["plaintext"],
                "tls": p.tls == r["tls"] and p.tls == RECORD_OVERHEAD * p.records and p.odd_records == 0,
                "handshake": p.handshake == r["handshake"],
                # The window's record overhead is part of the run's, in whole records.
                "window": split[d]["tls"] % RECORD_OVERHEAD == 0 and split[d]["tls"] <= r["tls"],
            }
            good = all(checks.values())
            ok &= good
            verdict = "exact" if good else "MISMATCH " + ",".join(k for k, v in checks.items() if not v)
            print(f"{name:<28} {d:<4} {f['conns']:>5} {p.wire:>9} {p.plaintext:>9} {p.records:>7} {p.tls:>7} {p.handshake:>9}  {verdict}")
            if not good:
                print(f"{'':<28} {'':<4} {'':>5} {result['bytes'][total]:>9} {r['plaintext']:>9} {r['tls'] // RECORD_OVERHEAD:>7} {r['tls']:>7} {r['handshake']:>9}  (results)")
            if p.tail:
                print(f"{'':<28} {'':<4} a connection ended {p.tail} B into a record (counted as handshake)")
    for name, f in figures.items():
        if not f["ws"]:
            continue
        one_record = all(plain == frame and whole == frame + RECORD_OVERHEAD for whole, plain, frame in f["ws"])
        ok &= one_record
        sizes = sorted({frame - 2 for _, _, frame in f["ws"]})
        print(f"{name}: {len(f['ws'])} ws events, each one record of JSON + 2 + 22 B: "
              f"{'yes' if one_record else 'NO'} (JSON sizes {sizes[0]}..{sizes[-1]} B)")
    print("(up: client to server; records: application-data records; tls: their header, inner type "
          "and tag; handshake: every other record, whole; checked against bytes.total_* and stack.run_tls)")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"verify-tls-pcap: {e}", file=sys.stderr)
        sys.exit(2)
