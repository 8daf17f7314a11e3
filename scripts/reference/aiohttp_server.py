#!/usr/bin/env python3
"""An independent feed server for feedbench, written from PROTOCOL.md alone.

Python 3.11 + aiohttp. It exists so that feedbench's loss and latency accounting can be
checked against a server that is not feedbench's own (see scripts/any-server-truth.sh and
scripts/reference/README.md). It implements the feed, the ring, /poll, /longpoll, /ws, /sse,
/control/feed, /stats, /metrics and /healthz; it does not count bytes at the socket, so
/stats has no `bytes` member (PROTOCOL.md 8 allows that).

    python3 scripts/reference/aiohttp_server.py --addr 127.0.0.1:0 --rate 20 \
        --payload-bytes 100 [--retain 100000] [--jitter-ms 0] [--ws-queue 4096] \
        [--control-token T] [--max-frame 65536]

First line on stdout: `feedbench listening on http://ADDR`. SIGINT/SIGTERM: stop accepting,
answer held long-polls, close WebSockets with 1001, end SSE streams, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import signal
import socket
import sys
import time

from aiohttp import WSMsgType, web
from aiohttp import http_exceptions, web_protocol

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
U64_MAX = 2**64 - 1
DIGITS = re.compile(r"[0-9]+\Z")

POLL_LIMIT_DEFAULT = 1000
POLL_LIMIT_MAX = 10_000
LONGPOLL_TIMEOUT_DEFAULT_MS = 30_000
LONGPOLL_TIMEOUT_MAX_MS = 120_000
RATE_MAX = 1_000_000.0
RATE_MIN = 0.001  # a rate is 0 (paused) or at least this
EVENT_RING_OVERHEAD = 289  # an event counts 2 * payload_bytes + 289 against retain_bytes
PAYLOAD_MAX = 1_048_576
CONTROL_BODY_MAX = 64 * 1024
# Overdue events published in one go before the publisher yields to the loop.
CATCH_UP_BATCH = 1000

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None,
                 close: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.close = close  # end the connection after the answer


def json_bytes(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_response(status: int, message: str, headers: dict | None = None) -> web.Response:
    h = dict(JSON_HEADERS)
    h.update(headers or {})
    return web.Response(status=status, body=json_bytes({"error": message}), headers=h)


def json_parse_errors() -> None:
    """Requests aiohttp's parser rejects (no Host, two Hosts, a bad request line, a header
    line over the limit) get the JSON error body too, not aiohttp's text/plain one; a line
    over the limit is 431. The connection is closed after the answer, as aiohttp does."""
    plain = web_protocol.RequestHandler.handle_error

    def handle_error(self, request, status=500, exc=None, message=None):
        if not 400 <= status < 500:
            return plain(self, request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        if isinstance(exc, http_exceptions.LineTooLong):
            status = 431
        text = getattr(exc, "message", None) or message or str(exc) or "bad request"
        resp = error_response(status, " ".join(str(text).split()))
        resp.force_close()
        return resp

    web_protocol.RequestHandler.handle_error = handle_error


# --------------------------------------------------------------------------- the feed


class Feed:
    """The one feed: open-loop publisher, ring of the newest `retain` events, waiters."""

    def __init__(self, rate_hz: float, payload_bytes: int, retain: int, retain_bytes: int,
                 ws_queue: int, jitter_ms: float):
        self.rate_hz = float(rate_hz)
        self.payload_bytes = int(payload_bytes)
        self.retain = retain
        self.retain_bytes = retain_bytes
        self.ws_queue = ws_queue
        self.jitter_s = jitter_ms / 1000.0
        # Slot seq % retain holds (event bytes, its cost against retain_bytes).
        self.ring: list[tuple[bytes, int] | None] = [None] * retain
        self.oldest = 1  # seq of the oldest retained event (head + 1 when empty)
        self.ring_bytes = 0
        self.head = 0  # seq of the newest event; 0 before the first
        self.failed: str | None = None  # why the publisher died, if it did
        self.published = 0
        self._changed = asyncio.Event()  # replaced on every publish
        self._task: asyncio.Task | None = None
        self._filler_base = ""
        self.subscribers: set[Subscriber] = set()
        self.slow_closed = {"ws": 0, "sse": 0}

    # -- the ring

    def first_retained(self) -> int:
        """Seq of the oldest event still in the ring (head + 1 when the ring is empty)."""
        return self.oldest

    def get(self, seq: int) -> bytes:
        return self.ring[seq % self.retain][0]

    def after(self, after: int, limit: int) -> tuple[list[bytes], int, int]:
        """(events with seq > after, oldest first, at most limit; next; missed)."""
        first = self.first_retained()
        missed = max(0, min(first - 1, self.head) - after)
        start = max(after + 1, first)
        end = min(self.head, start + limit - 1)
        events = [self.ring[s % self.retain][0] for s in range(start, end + 1)]
        nxt = end if events else after
        return events, nxt, missed

    def changed(self) -> asyncio.Event:
        """An Event set at the next publish (capture it before checking the head)."""
        return self._changed

    # -- encoding

    def _filler(self, seq: int) -> str:
        n = self.payload_bytes
        if len(self._filler_base) < n + len(ALPHABET):
            self._filler_base = ALPHABET * (n // len(ALPHABET) + 2)
        start = seq % len(ALPHABET)
        return self._filler_base[start:start + n]

    def _publish(self, ts_ns: int) -> None:
        seq = self.head + 1
        event = ('{"seq":%d,"ts":%d,"data":"%s"}' % (seq, ts_ns, self._filler(seq))).encode()
        cost = 2 * self.payload_bytes + EVENT_RING_OVERHEAD
        # The oldest leave first when either bound (retain events, retain_bytes) is reached.
        while self.oldest <= self.head and (seq - self.oldest + 1 > self.retain
                                            or self.ring_bytes + cost > self.retain_bytes):
            self.ring_bytes -= self.ring[self.oldest % self.retain][1]
            self.ring[self.oldest % self.retain] = None
            self.oldest += 1
        self.ring[seq % self.retain] = (event, cost)
        self.ring_bytes += cost
        self.head = seq
        self.published += 1
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()
        if self.subscribers:
            self._check_slow()

    def _check_slow(self) -> None:
        for sub in list(self.subscribers):
            if self.head - sub.cursor > self.ws_queue and not sub.slow:
                sub.slow = True
                self.slow_closed[sub.kind] += 1
                if sub.task is not None:
                    sub.task.cancel()

    # -- the schedule

    def configure(self, rate_hz: float | None = None, payload_bytes: int | None = None) -> None:
        """Change the feed and start a new schedule now (rate 0 pauses it)."""
        if rate_hz is not None:
            self.rate_hz = float(rate_hz)
        if payload_bytes is not None:
            self.payload_bytes = int(payload_bytes)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.rate_hz > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(self.rate_hz))
            self._task.add_done_callback(self._publisher_done)

    def _publisher_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.failed = f"the publisher died: {task.exception()!r}"
            print(f"aiohttp_server: {self.failed}", file=sys.stderr, flush=True)
            if self.on_failure is not None:
                self.on_failure()

    on_failure = None  # called once the publisher has died

    def max_rate(self, payload_bytes: int) -> float:
        """The highest rate whose events the ring can hold for a second."""
        return self.retain_bytes / (2 * payload_bytes + EVENT_RING_OVERHEAD)

    async def _run(self, rate_hz: float) -> None:
        loop = asyncio.get_running_loop()
        # One instant read on both clocks: scheduled times are wall-clock ns for `ts`,
        # monotonic seconds for the timers.
        mono_t0 = loop.time()
        wall_t0_ns = time.time_ns()
        period_ns = 1e9 / rate_hz
        i = 0
        not_before = mono_t0  # publish in seq order even with jitter
        batch = 0
        while True:
            offset_ns = round(i * period_ns)
            due = mono_t0 + offset_ns / 1e9
            if self.jitter_s > 0:
                due += random.uniform(0.0, self.jitter_s)
            due = max(due, not_before)
            not_before = due
            delay = due - loop.time()
            if delay > 0:
                batch = 0
                await asyncio.sleep(delay)
            elif batch >= CATCH_UP_BATCH:
                batch = 0
                await asyncio.sleep(0)
            self._publish(wall_t0_ns + offset_ns)
            batch += 1
            i += 1

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class Subscriber:
    """A streaming connection (ws or sse) for the slow-consumer check."""

    def __init__(self, kind: str, feed: Feed, after: int | None):
        self.kind = kind
        head = feed.head
        if after is None:
            cursor = head  # from the next event published
        elif head - after > feed.ws_queue:
            # It would be a slow consumer before its first event: start ws_queue / 2
            # behind the head (the skipped events are missed, as a gap in seq).
            cursor = head - feed.ws_queue // 2
        else:
            cursor = after
        self.cursor = cursor  # last seq written (or skipped) for this connection
        self.task = asyncio.current_task()
        self.slow = False


# --------------------------------------------------------------------------- parameters


def parse_query(request: web.Request, spec: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Unsigned integer parameters: unknown, repeated, non-numeric or out of range is 400."""
    out: dict[str, int] = {}
    for key, raw in request.query.items():  # every pair, repeats included
        if key not in spec:
            raise ApiError(400, f"unknown parameter '{key}'")
        if key in out:
            raise ApiError(400, f"parameter '{key}' given more than once")
        out[key] = parse_uint(key, raw, *spec[key])
    return out


def parse_uint(name: str, raw: str, lo: int, hi: int) -> int:
    if not DIGITS.match(raw):
        raise ApiError(400, f"{name} must be an unsigned integer, got '{raw}'")
    value = int(raw)
    if value > U64_MAX:
        raise ApiError(400, f"{name} must be an unsigned integer, got '{raw}'")
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be in {lo}..={hi}, got {value}")
    return value


def check_after(feed: Feed, after: int | None) -> None:
    if after is not None and after > feed.head:
        raise ApiError(400, f"after {after} is ahead of the head seq {feed.head}")


def poll_body(events: list[bytes], nxt: int, missed: int) -> bytes:
    return b'{"events":[' + b",".join(events) + b'],"next":%d,"missed":%d}' % (nxt, missed)


def poll_response(body: bytes) -> web.Response:
    return web.Response(status=200, body=body, headers=JSON_HEADERS)


# --------------------------------------------------------------------------- the app


class FeedServer:
    def __init__(self, args):
        self.args = args
        self.feed: Feed | None = None
        self.started = time.monotonic()
        self.shutting_down = asyncio.Event()
        self.open = {"ws": 0, "sse": 0, "long_poll_parked": 0, "http_active": 0}
        self.conn = {"accepted": 0, "closed": 0}
        self.requests = {k: 0 for k in ("poll", "longpoll", "ws", "sse", "control", "stats",
                                         "metrics", "healthz", "time", "other")}
        self.ws_protocol_errors = 0
        self.streams: set[asyncio.Task] = set()
        self.runner: web.AppRunner | None = None

    # -- middleware: JSON errors everywhere, request counters

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        path = request.path
        cls = {"/poll": "poll", "/longpoll": "longpoll", "/ws": "ws", "/sse": "sse",
               "/control/feed": "control", "/stats": "stats", "/metrics": "metrics",
               "/healthz": "healthz", "/time": "time"}.get(path, "other")
        self.requests[cls] += 1
        streaming = cls in ("ws", "sse")
        if not streaming:
            self.open["http_active"] += 1
        try:
            hosts = request.headers.getall("Host", [])
            if request.version >= (1, 1) and len(hosts) != 1:
                raise ApiError(400, "an HTTP/1.1 request needs exactly one Host header")
            resp = await handler(request)
        except ApiError as e:
            resp = error_response(e.status, e.message, e.headers)
            if e.close:
                resp.force_close()
        except web.HTTPException as e:
            if e.status < 400:
                raise
            headers = {}
            if "Allow" in e.headers:
                headers["Allow"] = e.headers["Allow"]
            if e.status == 404:
                msg = f"no such path: {path}"
            elif e.status == 405:
                msg = f"method {request.method} not allowed on {path}"
            else:
                msg = e.reason or e.text or "error"
            resp = error_response(e.status, msg, headers)
        finally:
            if not streaming:
                self.open["http_active"] -= 1
        # Once shutdown has begun, answers carry `connection: close` (aiohttp adds it).
        if self.shutting_down.is_set() and not resp.prepared:
            resp.force_close()
        return resp

    # -- endpoints

    async def healthz(self, request: web.Request) -> web.Response:
        parse_query(request, {})
        if self.feed.failed is not None:
            return web.Response(status=503, headers=JSON_HEADERS, body=json_bytes(
                {"status": "failed", "error": self.feed.failed}))
        return web.Response(body=b'{"status":"ok"}', headers=JSON_HEADERS)

    async def time(self, request: web.Request) -> web.Response:
        parse_query(request, {})
        # The clock `ts` comes from (time.time_ns), read as late as possible.
        return web.Response(body=b'{"unix_ns":%d}' % time.time_ns(), headers=JSON_HEADERS)

    async def poll(self, request: web.Request) -> web.Response:
        feed = self.feed
        q = parse_query(request, {"after": (0, U64_MAX), "limit": (1, POLL_LIMIT_MAX)})
        after = q.get("after")
        check_after(feed, after)
        if after is None:
            return poll_response(poll_body([], feed.head, 0))
        events, nxt, missed = feed.after(after, q.get("limit", POLL_LIMIT_DEFAULT))
        return poll_response(poll_body(events, nxt, missed))

    async def longpoll(self, request: web.Request) -> web.Response:
        feed = self.feed
        q = parse_query(request, {"after": (0, U64_MAX), "limit": (1, POLL_LIMIT_MAX),
                                  "timeout_ms": (0, LONGPOLL_TIMEOUT_MAX_MS)})
        after = q.get("after")
        check_after(feed, after)
        if after is None:
            after = feed.head
        limit = q.get("limit", POLL_LIMIT_DEFAULT)
        timeout = q.get("timeout_ms", LONGPOLL_TIMEOUT_DEFAULT_MS) / 1000.0
        if feed.head <= after and timeout > 0 and not self.shutting_down.is_set():
            # Held: no CPU while waiting. A client disconnect cancels this handler
            # (handler_cancellation=True), which drops the request.
            changed = feed.changed()
            self.open["long_poll_parked"] += 1
            try:
                await wait_any(changed, self.shutting_down, timeout)
            finally:
                self.open["long_poll_parked"] -= 1
        events, nxt, missed = feed.after(after, limit)
        return poll_response(poll_body(events, nxt, missed))

    def stream_cursor(self, request: web.Request, allow_header: bool) -> int | None:
        q = parse_query(request, {"after": (0, U64_MAX)})
        after = q.get("after")
        if after is None and allow_header and "Last-Event-ID" in request.headers:
            after = parse_uint("Last-Event-ID", request.headers["Last-Event-ID"].strip(),
                               0, U64_MAX)
        check_after(self.feed, after)
        return after

    async def ws(self, request: web.Request):
        feed = self.feed
        ws = web.WebSocketResponse(compress=False, autoping=True, autoclose=True,
                                   max_msg_size=self.args.max_frame)
        bad = {"sec-websocket-version": "13"}
        if request.method != "GET" or not ws.can_prepare(request).ok \
                or request.headers.get("Sec-WebSocket-Version", "").strip() != "13":
            raise ApiError(400, "a WebSocket upgrade is required (Connection: Upgrade, "
                                "Upgrade: websocket, Sec-WebSocket-Version: 13, "
                                "a 16-byte base64 Sec-WebSocket-Key)", bad)
        try:
            after = self.stream_cursor(request, allow_header=False)
        except ApiError as e:
            e.headers.update(bad)
            raise
        await ws.prepare(request)
        sub = Subscriber("ws", feed, after)
        feed.subscribers.add(sub)
        self.streams.add(sub.task)
        self.open["ws"] += 1
        reader = asyncio.get_running_loop().create_task(self._ws_reader(ws))
        try:
            while not self.shutting_down.is_set() and not reader.done():
                changed = feed.changed()
                if sub.cursor >= feed.head:
                    await wait_any(changed, self.shutting_down, None, reader)
                    continue
                first = feed.first_retained()
                if sub.cursor + 1 < first:
                    sub.cursor = first - 1  # left the ring: the client sees the gap
                seq = sub.cursor + 1
                await ws.send_frame(feed.get(seq), WSMsgType.TEXT)
                sub.cursor = seq
            if self.shutting_down.is_set() and not ws.closed:
                await asyncio.wait_for(
                    ws.close(code=1001, message=b"server shutting down"), 1.0)
        except asyncio.CancelledError:
            if not sub.slow:
                raise
            await self._close_slow_ws(ws, request)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            reader.cancel()
            feed.subscribers.discard(sub)
            self.streams.discard(sub.task)
            self.open["ws"] -= 1
        return ws

    async def _ws_reader(self, ws: web.WebSocketResponse) -> None:
        # Client messages are read and ignored; aiohttp answers pings and closes.
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                self.ws_protocol_errors += 1
                break

    async def _close_slow_ws(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        try:
            await asyncio.wait_for(ws.close(code=1013, message=b"slow consumer"), 1.0)
        except (asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        if request.transport is not None:
            request.transport.abort()

    async def sse(self, request: web.Request):
        feed = self.feed
        after = self.stream_cursor(request, allow_header=True)
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        })
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sub = Subscriber("sse", feed, after)
        feed.subscribers.add(sub)
        self.streams.add(sub.task)
        self.open["sse"] += 1
        try:
            while not self.shutting_down.is_set():
                changed = feed.changed()
                if sub.cursor >= feed.head:
                    await wait_any(changed, self.shutting_down, None)
                    continue
                first = feed.first_retained()
                if sub.cursor + 1 < first:
                    sub.cursor = first - 1
                seq = sub.cursor + 1
                # One write = one HTTP chunk: "id: SEQ\ndata: EVENT\n\n".
                await resp.write(b"id: %d\ndata: " % seq + feed.get(seq) + b"\n\n")
                sub.cursor = seq
            await resp.write_eof()  # shutdown: 0\r\n\r\n
        except asyncio.CancelledError:
            if not sub.slow:
                raise
            if request.transport is not None:
                request.transport.abort()  # a slow stream is ended by closing it
        except ConnectionError:
            pass
        finally:
            feed.subscribers.discard(sub)
            self.streams.discard(sub.task)
            self.open["sse"] -= 1
        return resp

    def feed_settings(self) -> bytes:
        return json_bytes({"rate_hz": float(self.feed.rate_hz),
                           "payload_bytes": self.feed.payload_bytes})

    async def control_get(self, request: web.Request) -> web.Response:
        parse_query(request, {})
        return web.Response(body=self.feed_settings(), headers=JSON_HEADERS)

    async def control_put(self, request: web.Request) -> web.Response:
        parse_query(request, {})
        token = self.args.control_token
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            raise ApiError(401, "PUT /control/feed needs Authorization: Bearer TOKEN",
                           {"WWW-Authenticate": "Bearer"})
        if self.feed.failed is not None:
            raise ApiError(503, self.feed.failed)
        if request.content_length is not None and request.content_length > CONTROL_BODY_MAX:
            raise ApiError(413, f"control body over {CONTROL_BODY_MAX} bytes", close=True)
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + self.args.header_timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                chunk = await asyncio.wait_for(request.content.readany(), max(left, 0))
            except asyncio.TimeoutError:
                raise ApiError(408, "control body not received within the header timeout",
                               close=True)
            if not chunk:
                break
            body += chunk
            if len(body) > CONTROL_BODY_MAX:
                raise ApiError(413, f"control body over {CONTROL_BODY_MAX} bytes", close=True)
        rate, payload = parse_control(bytes(body))
        new_rate = self.feed.rate_hz if rate is None else rate
        new_payload = self.feed.payload_bytes if payload is None else payload
        highest = self.feed.max_rate(new_payload)
        if new_rate > highest:
            raise ApiError(400, f"the ring cannot hold this feed: at {new_payload}-byte payloads "
                                f"the highest rate is {highest:.3f} events/s "
                                f"(rate_hz x (2 x payload_bytes + 289) <= retain_bytes "
                                f"{self.feed.retain_bytes})")
        self.feed.configure(rate, payload)
        return web.Response(body=self.feed_settings(), headers=JSON_HEADERS)

    def stats_doc(self) -> dict:
        feed = self.feed
        total = len(self.runner.server.connections) if self.runner and self.runner.server else 0
        busy = self.open["ws"] + self.open["sse"] + self.open["long_poll_parked"]
        active = max(0, self.open["http_active"] - self.open["long_poll_parked"])
        doc = {
            "feed": {"rate_hz": float(feed.rate_hz), "payload_bytes": feed.payload_bytes,
                     "retain": feed.retain, "ws_queue": feed.ws_queue,
                     "retain_bytes": feed.retain_bytes,
                     "ring_events": feed.head - feed.oldest + 1, "ring_bytes": feed.ring_bytes},
            "head_seq": feed.head,
            "events_published": feed.published,
            "uptime_s": round(time.monotonic() - self.started, 6),
            "connections": {
                "open": {"ws": self.open["ws"], "sse": self.open["sse"],
                         "long_poll_parked": self.open["long_poll_parked"],
                         "http_idle": max(0, total - busy - active),
                         "http_active": active, "total": total},
                "accepted": self.conn["accepted"], "refused": 0,
                "closed": self.conn["closed"], "accept_errors": 0,
                # No connection cap of its own: the open-file limit is the real one.
                "max": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                "slow_consumer_closed": dict(feed.slow_closed),
                "ws_protocol_errors": self.ws_protocol_errors,
            },
            # No "bytes": this server does not count socket bytes (PROTOCOL.md 8).
            "requests": dict(self.requests),
        }
        proc = process_stats()
        if proc is not None:
            doc["process"] = proc
        return doc

    async def stats(self, request: web.Request) -> web.Response:
        parse_query(request, {})
        return web.Response(body=json_bytes(self.stats_doc()), headers=JSON_HEADERS)

    async def metrics(self, request: web.Request) -> web.Response:
        parse_query(request, {})
        doc = self.stats_doc()
        lines = []

        def gauge(name, value, help_, kind="gauge", labels=""):
            lines.append(f"# HELP feedbench_{name} {help_}")
            lines.append(f"# TYPE feedbench_{name} {kind}")
            lines.append(f"feedbench_{name}{labels} {value}")

        gauge("head_seq", doc["head_seq"], "Seq of the newest event.")
        gauge("events_published_total", doc["events_published"], "Events published.",
              "counter")
        gauge("uptime_seconds", doc["uptime_s"], "Seconds since start.")
        gauge("feed_rate_hz", doc["feed"]["rate_hz"], "Feed rate.")
        gauge("feed_payload_bytes", doc["feed"]["payload_bytes"], "Event data length.")
        lines.append("# HELP feedbench_connections_open Open connections by kind.")
        lines.append("# TYPE feedbench_connections_open gauge")
        for k, v in doc["connections"]["open"].items():
            lines.append(f'feedbench_connections_open{{kind="{k}"}} {v}')
        lines.append("# HELP feedbench_requests_total Requests by endpoint.")
        lines.append("# TYPE feedbench_requests_total counter")
        for k, v in doc["requests"].items():
            lines.append(f'feedbench_requests_total{{endpoint="{k}"}} {v}')
        if "process" in doc:
            p = doc["process"]
            gauge("process_cpu_seconds_total", p["cpu_user_s"] + p["cpu_sys_s"],
                  "Server CPU time.", "counter")
            gauge("process_rss_bytes", p["rss_bytes"], "Resident set size.")
        return web.Response(body=("\n".join(lines) + "\n").encode(), headers={
            "Content-Type": "text/plain; version=0.0.4", "Cache-Control": "no-store"})

    async def not_found(self, request: web.Request):
        raise ApiError(404, f"no such path: {request.path}")

    # -- lifecycle

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        get = lambda path, h: app.router.add_route("GET", path, h)  # noqa: E731
        get("/poll", self.poll)
        get("/longpoll", self.longpoll)
        get("/ws", self.ws)
        get("/sse", self.sse)
        get("/control/feed", self.control_get)
        app.router.add_route("PUT", "/control/feed", self.control_put)
        get("/stats", self.stats)
        get("/metrics", self.metrics)
        get("/healthz", self.healthz)
        app.router.add_get("/time", self.time)  # GET and HEAD
        return app

    def _track_connections(self, server) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler, transport):
            self.conn["accepted"] += 1
            made(handler, transport)

        def connection_lost(handler, exc=None):
            self.conn["closed"] += 1
            lost(handler, exc)

        server.connection_made = connection_made
        server.connection_lost = connection_lost

    async def serve(self) -> int:
        args = self.args
        self.feed = Feed(args.rate, args.payload_bytes, args.retain, args.retain_bytes,
                         args.ws_queue, args.jitter_ms)
        sock = bind(args.addr)
        json_parse_errors()
        # Request head lines up to 16 KiB (PROTOCOL.md 9; aiohttp bounds each line, not the
        # head as a whole).
        self.runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None,
                                    handler_cancellation=True, shutdown_timeout=0.5,
                                    max_line_size=16384, max_field_size=16384)
        await self.runner.setup()
        self._track_connections(self.runner.server)
        site = web.SockSite(self.runner, sock)
        await site.start()
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        sys.stdout.write(f"feedbench listening on http://{shown}:{port}\n")
        sys.stdout.flush()

        self.feed.configure()  # start the schedule now

        stop = asyncio.Event()
        self.feed.on_failure = stop.set  # a dead publisher: answer 503, then exit 1
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

        # Shutdown: stop accepting, stop the feed, answer held long-polls (no events),
        # close WebSockets with 1001 and end SSE streams, then close the rest.
        await site.stop()
        self.feed.stop()
        self.shutting_down.set()
        deadline = loop.time() + 1.0
        while self.streams and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await self.runner.cleanup()
        return 1 if self.feed.failed is not None else 0


def parse_control(body: bytes) -> tuple[float | None, int | None]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"control body is not valid JSON: {e}")
    if not isinstance(doc, dict):
        raise ApiError(400, "control body must be a JSON object")
    unknown = [k for k in doc if k not in ("rate_hz", "payload_bytes")]
    if unknown:
        raise ApiError(400, f"unknown field '{unknown[0]}' (expected rate_hz, payload_bytes)")
    if not doc:
        raise ApiError(400, "control body needs rate_hz, payload_bytes or both")
    rate = payload = None
    if "rate_hz" in doc:
        r = doc["rate_hz"]
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise ApiError(400, "rate_hz must be a number")
        if not math.isfinite(r) or not (r == 0 or RATE_MIN <= r <= RATE_MAX):
            raise ApiError(400, f"rate_hz must be 0 (paused) or in 0.001..=1000000, got {r}")
        rate = float(r)
    if "payload_bytes" in doc:
        p = doc["payload_bytes"]
        if isinstance(p, bool) or not isinstance(p, int):
            raise ApiError(400, "payload_bytes must be an unsigned integer")
        if not 0 <= p <= PAYLOAD_MAX:
            raise ApiError(400, f"payload_bytes must be in 0..=1048576, got {p}")
        payload = p
    return rate, payload


async def wait_any(event: asyncio.Event, shutdown: asyncio.Event, timeout: float | None,
                   extra: asyncio.Future | None = None) -> None:
    """Wait until `event` or `shutdown` is set, `extra` is done, or `timeout` passes."""
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(shutdown.wait())]
    if extra is not None:
        waiters.append(extra)
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters[:2]:
            w.cancel()


def process_stats() -> dict | None:
    try:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        status = {}
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                status[k] = v.strip()
        kib = lambda k: int(status[k].split()[0]) * 1024  # noqa: E731
        return {
            "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
            "rss_bytes": kib("VmRSS"), "rss_peak_bytes": kib("VmHWM"),
            "threads": int(status["Threads"]), "open_fds": len(os.listdir("/proc/self/fd")),
            "ctx_switches_voluntary": ru.ru_nvcsw, "ctx_switches_involuntary": ru.ru_nivcsw,
        }
    except (OSError, KeyError, ValueError):
        return None


def bind(addr: str) -> socket.socket:
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", addr)
    if not m:
        raise SystemExit(f"aiohttp_server: --addr must be HOST:PORT, got '{addr}'")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", default="127.0.0.1:8080", help="HOST:PORT (port 0: a free one)")
    p.add_argument("--rate", type=float, default=10.0, help="events per second (0: paused)")
    p.add_argument("--payload-bytes", type=int, default=64, help="length of each event's data")
    p.add_argument("--retain", type=int, default=100_000, help="events kept in the ring")
    p.add_argument("--retain-bytes", type=int, default=512 * 1024 * 1024,
                   help="bytes the ring may hold, each event counted as 2 x payload + 289")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a control body may take to arrive (408 after)")
    p.add_argument("--ws-queue", type=int, default=4096,
                   help="most events a ws/sse connection may fall behind the head")
    p.add_argument("--jitter-ms", type=float, default=0.0,
                   help="publish each event up to N ms late (uniform), in seq order, "
                        "still stamped with its scheduled ts")
    p.add_argument("--control-token", default=None, help="bearer token PUT /control/feed needs")
    p.add_argument("--max-frame", type=int, default=65536,
                   help="largest client WebSocket message (1009 above)")
    args = p.parse_args()
    if not math.isfinite(args.rate) or not (args.rate == 0 or RATE_MIN <= args.rate <= RATE_MAX):
        p.error("--rate must be 0 (paused) or in 0.001..=1000000")
    if not 0 <= args.payload_bytes <= PAYLOAD_MAX:
        p.error("--payload-bytes must be in 0..=1048576")
    if args.retain < 1:
        p.error("--retain must be at least 1")
    if args.retain_bytes < 2 * args.payload_bytes + EVENT_RING_OVERHEAD:
        p.error("--retain-bytes must hold at least one event")
    if args.rate * (2 * args.payload_bytes + EVENT_RING_OVERHEAD) > args.retain_bytes:
        p.error("the ring cannot hold this feed: rate x (2 x payload + 289) > --retain-bytes")
    if args.header_timeout <= 0:
        p.error("--header-timeout must be above 0")
    if args.ws_queue < 1:
        p.error("--ws-queue must be at least 1")
    if args.jitter_ms < 0:
        p.error("--jitter-ms must be 0 or more")
    sys.exit(asyncio.run(FeedServer(args).serve()))


if __name__ == "__main__":
    main()
