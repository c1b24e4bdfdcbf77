"""OpenAIBackend against a local HTTP server.

The server below is a *protocol fake*: a stdlib ``http.server`` on 127.0.0.1 that speaks only the subset of
the OpenAI ``/v1/completions`` API the backend uses (POST JSON in, ``{"choices": [{"text": ...}]}`` out) and
can be told to fail, stall or answer slowly. It is not vLLM; it checks the HTTP side (request fields, auth
header, retries, timeouts, fallback, concurrency limit, key hygiene).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmrl.config import OpenAIConfig
from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError
from llmrl.teacher.backends.openai_backend import OpenAIBackend, redact_url

OPTIONS = ("explore", "go to key, pick up key", "go to door, open door")
QUERY = TeacherQuery("minigrid", "SimpleDoorKey", "Agent sees <key>, holds <nothing>.", OPTIONS)
BANK = PromptBankSnapshot(version=4, task_description="Open the door.")
SECRET = "sk-test-SECRET-123456"


class FakeCompletions:
    """State shared with the handler threads: what to answer, and what was received."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict, dict]] = []  # (path, headers, body)
        self.texts = ["explore", " explore\n", " go to key, pick up key", "junk"]
        self.statuses: list[int] = []  # consumed one per request; empty -> 200
        self.sleep_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append((self.path, dict(self.headers), body))
                    status = fake.statuses.pop(0) if fake.statuses else 200
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if fake.sleep_s:
                        time.sleep(fake.sleep_s)
                    if status != 200:
                        payload = {"error": {"message": "boom"}}
                    else:
                        n = body.get("n", 1)
                        payload = {"object": "text_completion", "model": body.get("model"),
                                   "choices": [{"index": i, "text": fake.texts[i % len(fake.texts)],
                                                "finish_reason": "stop"} for i in range(n)]}
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

        return Handler


@pytest.fixture
def server():
    fake = FakeCompletions()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def _cfg(base_url, **kw):
    base = dict(base_url=base_url, model="teacher-7b", api_key_env="LLMRL_TEST_API_KEY", timeout_s=2.0,
                max_retries=2, backoff_s=0.01, max_concurrency=4, num_samples=4, temperature=0.7, max_tokens=16)
    base.update(kw)
    return OpenAIConfig(**base)


def _advise(backend, queries):
    async def go():
        try:
            return await backend.advise(queries, BANK)
        finally:
            await backend.close()

    return asyncio.run(go())


def test_request_fields_and_auth_header(server, monkeypatch):
    monkeypatch.setenv("LLMRL_TEST_API_KEY", SECRET)
    out = _advise(OpenAIBackend(_cfg(server.base_url)), [QUERY])
    assert len(server.requests) == 1
    path, headers, body = server.requests[0]
    assert path == "/v1/completions"
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert body["model"] == "teacher-7b" and body["n"] == 4 and body["temperature"] == 0.7 and body["max_tokens"] == 16
    assert body["prompt"].startswith("Open the door.") and body["prompt"].endswith("Plan:")
    assert QUERY.state_text in body["prompt"]
    assert "structured_outputs" not in body
    assert out[0].has_advice and out[0].source == "openai:teacher-7b" and out[0].bank_version == 4


def test_no_key_no_auth_header(server, monkeypatch):
    monkeypatch.delenv("LLMRL_TEST_API_KEY", raising=False)
    _advise(OpenAIBackend(_cfg(server.base_url)), [QUERY])
    assert "Authorization" not in server.requests[0][1]


def test_distribution_from_choices(server):
    out = _advise(OpenAIBackend(_cfg(server.base_url)), [QUERY])
    # texts: explore, explore, go to key..., junk -> 2/3, 1/3, 0 with one invalid sample
    assert out[0].probs == pytest.approx((2 / 3, 1 / 3, 0.0))
    assert out[0].invalid_outputs == 1


def test_choice_mode_sends_structured_outputs(server):
    _advise(OpenAIBackend(_cfg(server.base_url, selection="choice")), [QUERY])
    assert server.requests[0][2]["structured_outputs"] == {"choice": list(OPTIONS)}


def test_all_unparseable_is_no_advice(server):
    server.texts = ["nonsense", "more nonsense"]
    out = _advise(OpenAIBackend(_cfg(server.base_url)), [QUERY])
    assert not out[0].has_advice and out[0].reason == "unparseable" and out[0].invalid_outputs == 4


def test_retries_then_fallback_on_500(server, caplog):
    server.statuses = [500] * 100
    backend = OpenAIBackend(_cfg(server.base_url, max_retries=2))
    with caplog.at_level(logging.WARNING, logger="llmrl"):
        out = _advise(backend, [QUERY, TeacherQuery("minigrid", "SimpleDoorKey", "other", OPTIONS)])
    assert [a.reason for a in out] == ["teacher_unavailable"] * 2 and not any(a.has_advice for a in out)
    assert len(server.requests) == 2 * 3  # 1 try + 2 retries each
    stats = backend.stats()
    assert stats["failures"] == 2 and stats["retries"] == 4 and stats["http_errors"] == 6
    # Rate-limited: one warning for the burst, not one per request.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("llmrl")]
    assert len(warnings) == 1 and "500" in warnings[0].getMessage()


def test_retry_then_success(server):
    server.statuses = [503, 500]
    backend = OpenAIBackend(_cfg(server.base_url, max_retries=2))
    out = _advise(backend, [QUERY])
    assert out[0].has_advice and len(server.requests) == 3 and backend.stats()["retries"] == 2


def test_client_errors_are_not_retried(server):
    server.statuses = [400] * 10
    out = _advise(OpenAIBackend(_cfg(server.base_url, max_retries=3)), [QUERY])
    assert out[0].reason == "teacher_unavailable" and len(server.requests) == 1


def test_timeout_fallback_is_bounded(server):
    server.sleep_s = 5.0
    backend = OpenAIBackend(_cfg(server.base_url, timeout_s=0.3, max_retries=1, backoff_s=0.01))
    start = time.monotonic()
    out = _advise(backend, [QUERY])
    elapsed = time.monotonic() - start
    assert out[0].reason == "teacher_unavailable"
    # timeout x (retries + 1) + backoff = 0.61 s; generous slack for a loaded CI box, far below the 5 s stall.
    assert elapsed < 2.5
    assert backend.stats()["timeouts"] == 2


def test_unreachable_port_fallback():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    backend = OpenAIBackend(_cfg(f"http://127.0.0.1:{port}/v1", timeout_s=1.0, max_retries=2))
    start = time.monotonic()
    out = _advise(backend, [QUERY])
    assert out[0].reason == "teacher_unavailable" and time.monotonic() - start < 3.0
    assert backend.stats()["connect_errors"] == 3


def test_concurrency_limit(server):
    server.sleep_s = 0.1
    queries = [TeacherQuery("minigrid", "SimpleDoorKey", f"state {i}", OPTIONS) for i in range(8)]
    out = _advise(OpenAIBackend(_cfg(server.base_url, max_concurrency=2)), queries)
    assert all(a.has_advice for a in out)
    assert server.max_in_flight == 2


def test_api_key_never_logged(server, monkeypatch, caplog):
    monkeypatch.setenv("LLMRL_TEST_API_KEY", SECRET)
    server.statuses = [500] * 100
    backend = OpenAIBackend(_cfg(server.base_url))
    # DEBUG on every logger, httpx's and httpcore's included.
    with caplog.at_level(logging.DEBUG):
        out = _advise(backend, [QUERY])
    assert out[0].reason == "teacher_unavailable"
    assert caplog.records  # the failure was logged ...
    assert SECRET not in caplog.text  # ... without the key
    assert SECRET not in repr(backend) and SECRET not in str(backend.stats())


def test_bad_config_is_backend_error():
    with pytest.raises(BackendError, match="teacher.openai.base_url"):
        OpenAIBackend(OpenAIConfig(base_url="", model="m"))
    with pytest.raises(BackendError, match="teacher.openai.base_url"):
        OpenAIBackend(OpenAIConfig(base_url="ftp://host/v1", model="m"))


def test_redact_url():
    assert redact_url("http://u:p@host:8000/v1") == "http://host:8000/v1"
    assert redact_url("http://host/v1") == "http://host/v1"
