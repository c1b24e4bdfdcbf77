"""A teacher behind an OpenAI-compatible ``/completions`` endpoint: ``vllm serve``, SGLang or a hosted API.

Each query is one HTTP request asking for ``n = num_samples`` completions of the prompt; the answers are
parsed and counted like LLM4Teach's repeated asking (``plan_choice.distribution_from_samples``). With
``selection: choice`` the request also carries vLLM's structured-output extension
``"structured_outputs": {"choice": [...options]}`` (vLLM >= 0.12; it replaced ``guided_choice``), so every
sample is an admissible option.

Failure policy: a request gets at most ``timeout_s`` per attempt and ``max_retries`` retries (exponential
backoff from ``backoff_s``) on timeouts, connection errors, 429 and 5xx; other 4xx answers are not retried.
After that the query yields ``Advice.none(reason="teacher_unavailable")``; nothing raises, nothing hangs,
and one warning is logged per ``_WARN_EVERY_S`` rather than one per request. At most ``max_concurrency``
requests are in flight per backend. The API key comes from the environment variable ``api_key_env`` and
appears in no log line, repr or error.

LoRA adapters (``llmrl.adapter``) are hot-loaded through vLLM's runtime LoRA endpoint: ``prepare_adapter``
posts ``{"lora_name": ..., "lora_path": ...}`` to ``{base_url}/load_lora_adapter`` and ``activate_adapter``
makes ``lora_name`` the ``model`` of every later request (vLLM serves a loaded adapter under its name). The
server must run with ``--enable-lora`` (``--max-lora-rank`` at least ``adapter.r``) and the environment variable
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, and ``lora_path`` must be readable on the server's machine (a run
folder on shared storage). See https://docs.vllm.ai/en/latest/features/lora/ ("Dynamically serving LoRA
adapters").
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmrl.config import OpenAIConfig
from llmrl.messages import AdapterVersion, Advice, PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends import BackendError
from llmrl.teacher.plan_choice import distribution_from_samples, to_advice
from llmrl.teacher.prompting import build_prompt

log = logging.getLogger(__name__)

# A dead endpoint fails every request; one line per interval says so without flooding the log.
_WARN_EVERY_S = 60.0
_RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class _Failure(Exception):
    """One attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, kind: str, detail: str, retry: bool):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.retry = retry


def completions_url(base_url: str) -> str:
    """``{base_url}/completions`` (``base_url`` is the API root, e.g. ``http://host:8000/v1``)."""
    return base_url.rstrip("/") + "/completions"


def redact_url(url: str) -> str:
    """The URL without user:password, for log lines."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def request_body(cfg: OpenAIConfig, prompt: str, options: Sequence[str], model: str = "") -> dict[str, Any]:
    """The JSON body of one ``/completions`` request (``model``: a loaded LoRA adapter's name, "" = cfg.model)."""
    body: dict[str, Any] = {
        "model": model or cfg.model,
        "prompt": prompt,
        "n": cfg.num_samples,
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
    }
    if cfg.selection == "choice":
        body["structured_outputs"] = {"choice": list(options)}
    return body


def samples_from_response(payload: Any) -> list[str]:
    """The completion texts of a ``/completions`` response; raises ValueError if it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise ValueError("response has no 'choices' list")
    texts = []
    for choice in payload["choices"]:
        if not isinstance(choice, dict) or not isinstance(choice.get("text"), str):
            raise ValueError("a choice has no 'text' string")
        texts.append(choice["text"])
    return texts


class OpenAIBackend:
    """``PlanBackend`` over an OpenAI-compatible completions endpoint (``httpx`` async client)."""

    def __init__(self, cfg: OpenAIConfig):
        try:
            import httpx
        except ImportError:
            raise BackendError("teacher.backend=openai needs httpx: pip install 'llmrl[openai]'") from None
        if not cfg.base_url or not cfg.model:
            raise BackendError("teacher.openai.base_url: base_url and model are required")
        self._httpx = httpx
        self._cfg = cfg
        self.name = f"openai:{cfg.model}"
        self._url = completions_url(cfg.base_url)
        if urlsplit(self._url).scheme not in ("http", "https") or not urlsplit(self._url).hostname:
            raise BackendError(f"teacher.openai.base_url: expected http(s)://host[:port]/..., got "
                               f"{redact_url(cfg.base_url)!r}")
        self._log_url = redact_url(self._url)
        self._key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        self._headers = {"Content-Type": "application/json"}
        if self._key:
            self._headers["Authorization"] = f"Bearer {self._key}"
        # The client and semaphore belong to one event loop; they are made on first use in the running loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None
        self._served_model = ""  # a hot-loaded LoRA adapter's name; "" = cfg.model
        self._last_warn = -float("inf")
        self._unwarned_failures = 0
        self._stats = {"requests": 0, "attempts": 0, "retries": 0, "failures": 0, "timeouts": 0,
                       "connect_errors": 0, "http_errors": 0, "bad_responses": 0, "samples": 0,
                       "invalid_outputs": 0}

    def __repr__(self) -> str:
        return f"OpenAIBackend(url={self._log_url!r}, model={self._cfg.model!r})"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    async def _ensure_client(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:  # noqa: BLE001 - the old loop's connections may already be gone
                pass
        limits = self._httpx.Limits(max_connections=self._cfg.max_concurrency)
        self._client = self._httpx.AsyncClient(timeout=self._httpx.Timeout(self._cfg.timeout_s), limits=limits)
        self._sem = asyncio.Semaphore(self._cfg.max_concurrency)
        self._loop = loop

    async def advise(self, queries: Sequence[TeacherQuery], bank: PromptBankSnapshot) -> list[Advice]:
        if not queries:
            return []
        await self._ensure_client()
        return list(await asyncio.gather(*(self._advise_one(q, bank) for q in queries)))

    async def _advise_one(self, query: TeacherQuery, bank: PromptBankSnapshot) -> Advice:
        body = request_body(self._cfg, build_prompt(query, bank), query.options, self._served_model)
        self._stats["requests"] += 1
        try:
            samples = await self._post_with_retries(body)
        except _Failure as f:
            self._stats["failures"] += 1
            self._warn(f)
            return Advice.none(query.options, reason="teacher_unavailable", bank_version=bank.version)
        except Exception as e:  # noqa: BLE001 - a teacher problem must never take the training run down
            self._stats["failures"] += 1
            self._warn(_Failure("unexpected error", type(e).__name__ + (f" ({e})" if str(e) else ""), retry=False))
            return Advice.none(query.options, reason="teacher_unavailable", bank_version=bank.version)
        probs, invalid = distribution_from_samples(samples, query.options)
        self._stats["samples"] += len(samples)
        self._stats["invalid_outputs"] += invalid
        return to_advice(query.options, probs, self.name, bank.version, invalid)

    async def _post_with_retries(self, body: dict[str, Any]) -> list[str]:
        assert self._sem is not None
        attempts = self._cfg.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self._stats["retries"] += 1
                await asyncio.sleep(self._cfg.backoff_s * 2 ** (attempt - 1))
            try:
                async with self._sem:
                    return await self._post_once(body)
            except _Failure as f:
                if not f.retry or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    async def _post_once(self, body: dict[str, Any]) -> list[str]:
        httpx = self._httpx
        self._stats["attempts"] += 1
        try:
            # wait_for bounds the whole attempt; httpx's own timeouts are per phase (connect, each read, ...).
            resp = await asyncio.wait_for(
                self._client.post(self._url, json=body, headers=self._headers), timeout=self._cfg.timeout_s
            )
        except (asyncio.TimeoutError, httpx.TimeoutException):
            self._stats["timeouts"] += 1
            raise _Failure("timeout", f"no answer within {self._cfg.timeout_s:g}s", retry=True) from None
        except httpx.TransportError as e:
            self._stats["connect_errors"] += 1
            raise _Failure("connection error", type(e).__name__ + (f" ({e})" if str(e) else ""), retry=True) from None
        except httpx.HTTPError as e:
            self._stats["connect_errors"] += 1
            raise _Failure("request error", type(e).__name__ + (f" ({e})" if str(e) else ""), retry=False) from None
        if resp.status_code != 200:
            self._stats["http_errors"] += 1
            raise _Failure("HTTP error", str(resp.status_code), retry=resp.status_code in _RETRY_STATUS)
        try:
            return samples_from_response(resp.json())
        except ValueError as e:
            self._stats["bad_responses"] += 1
            raise _Failure("bad response", str(e), retry=False) from None

    def _warn(self, failure: _Failure) -> None:
        self._unwarned_failures += 1
        now = time.monotonic()
        if now - self._last_warn < _WARN_EVERY_S:
            return
        log.warning(
            "openai teacher at %s: %d request(s) failed since the last warning (last: %s); "
            "those states get no advice",
            self._log_url, self._unwarned_failures, self._scrub(str(failure)),
        )
        self._last_warn = now
        self._unwarned_failures = 0

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._stats.items()}

    async def prepare_adapter(self, version: AdapterVersion) -> None:
        """Ask the server to load a version (``POST {base_url}/load_lora_adapter``); one attempt, one-line error."""
        await self._ensure_client()
        url = self._cfg.base_url.rstrip("/") + "/load_lora_adapter"
        body = {"lora_name": version.name, "lora_path": version.path}
        try:
            resp = await asyncio.wait_for(self._client.post(url, json=body, headers=self._headers),
                                          timeout=self._cfg.timeout_s)
        except Exception as e:  # noqa: BLE001 - timeouts and transport errors alike: the version is not served
            raise BackendError(f"loading adapter {version.name} at {redact_url(url)} failed: "
                               f"{type(e).__name__}") from None
        if resp.status_code != 200:
            detail = self._scrub(" ".join(resp.text.split())[:200])
            raise BackendError(f"loading adapter {version.name} at {redact_url(url)} failed: HTTP "
                               f"{resp.status_code} {detail} (does the server run with --enable-lora and "
                               f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True?)")

    async def activate_adapter(self, version: AdapterVersion) -> None:
        """Send later requests to the loaded adapter (vLLM serves it under its ``lora_name``)."""
        self._served_model = version.name

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._loop = self._client, None, None
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing from another loop after the old one ended
                pass
