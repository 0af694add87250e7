"""Configuration from the environment, validated once at start.

Every problem is reported as a :class:`ConfigError` whose message names the variable, because the operator
reading ``configuration error: ...`` must know what to fix without reading code.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from .origins import OriginError, parse_allow_list

__all__ = ["Config", "ConfigError", "load"]

PREFIX = "PROCESSOR_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
STREAM_ID = re.compile(r"[0-9]+(-[0-9]+)?", re.ASCII)

T = TypeVar("T")


class ConfigError(ValueError):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Config:
    redis_url: str
    database_url: str
    directus_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    stream: str = "telemetry:teltonika"
    group: str = "processor"
    consumer: str = ""
    group_start_id: str = "0"
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    directus_timeout: float = 2.0
    read_count: int = 500
    read_block_ms: int = 1000
    redis_timeout: float = 5.0
    claim_idle_ms: int = 30000
    client_queue: int = 1024
    max_frame_bytes: int = 65536
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    subscribe_rate: float = 20.0
    max_subscriptions: int = 50
    shutdown_timeout: float = 4.0
    live_lag_limit_ms: int = 5000

    @property
    def dead_stream(self) -> str:
        return f"{self.stream}:dead"

    @property
    def live_channel(self) -> str:
        return f"{self.stream}:live"


def _integer(low: int, high: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, text: str) -> int:
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ConfigError(f"{name} must be an integer {bound}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise ConfigError(f"{name} must be an integer {bound}, got {text!r}")
        return value

    return parse


def _number(*, positive: bool = True) -> Callable[[str, str], float]:
    def parse(name: str, text: str) -> float:
        bound = "> 0" if positive else ">= 0"
        try:
            value = float(text.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number {bound}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ConfigError(f"{name} must be a number {bound}, got {text!r}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        value = text.strip()
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL, got {text!r}")
        return value

    return parse


def _directus_url(name: str, text: str) -> str:
    value = _url("http", "https")(name, text)
    parts = urlsplit(value)
    if not parts.hostname:
        raise ConfigError(f"{name} must be an http or https URL, got {text!r}")
    return value.rstrip("/")


def _nonempty(name: str, text: str) -> str:
    value = text.strip()
    if not value:
        raise ConfigError(f"{name} must not be empty")
    return value


def _start_id(name: str, text: str) -> str:
    value = text.strip()
    if value != "$" and not STREAM_ID.fullmatch(value):
        raise ConfigError(f"{name} must be 0, $ or a stream id, got {text!r}")
    return value


def _origins(name: str, text: str) -> tuple[str, ...]:
    """Normalised origins (see processor/origins.py): an entry no browser could send is a deploy-time error."""
    try:
        return parse_allow_list(text)
    except OriginError as exc:
        raise ConfigError(f"{name} {exc}") from None


def _log_level(name: str, text: str) -> str:
    value = text.strip().upper()
    if value not in LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return value


def load(environ: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from ``environ`` (default: ``os.environ``); raise :class:`ConfigError`."""
    env = os.environ if environ is None else environ

    def get(key: str, parse: Callable[[str, str], T], default: T | None = None) -> T:
        name = PREFIX + key
        text = env.get(name)
        if text is None or text.strip() == "":
            if default is None:
                raise ConfigError(f"{name} is required")
            return default
        return parse(name, text)

    config = Config(
        redis_url=get("REDIS_URL", _url("redis", "rediss", "unix")),
        database_url=get("DATABASE_URL", _url("postgres", "postgresql")),
        directus_url=get("DIRECTUS_URL", _directus_url),
        host=get("HOST", _nonempty, "127.0.0.1"),
        port=get("PORT", _integer(1, 65535), 8080),
        stream=get("STREAM", _nonempty, "telemetry:teltonika"),
        group=get("GROUP", _nonempty, "processor"),
        consumer=get("CONSUMER", _nonempty, f"{socket.gethostname()}-{os.getpid()}"),
        group_start_id=get("GROUP_START_ID", _start_id, "0"),
        allowed_origins=get("ALLOWED_ORIGINS", _origins, ()),
        log_level=get("LOG_LEVEL", _log_level, "INFO"),
        directus_timeout=get("DIRECTUS_TIMEOUT", _number(), 2.0),
        read_count=get("READ_COUNT", _integer(1), 500),
        read_block_ms=get("READ_BLOCK_MS", _integer(1), 1000),
        redis_timeout=get("REDIS_TIMEOUT", _number(), 5.0),
        claim_idle_ms=get("CLAIM_IDLE_MS", _integer(1), 30000),
        client_queue=get("CLIENT_QUEUE", _integer(1), 1024),
        max_frame_bytes=get("MAX_FRAME_BYTES", _integer(1), 65536),
        ping_interval=get("PING_INTERVAL", _number(), 20.0),
        ping_timeout=get("PING_TIMEOUT", _number(), 20.0),
        subscribe_rate=get("SUBSCRIBE_RATE", _number(), 20.0),
        max_subscriptions=get("MAX_SUBSCRIPTIONS", _integer(1), 50),
        shutdown_timeout=get("SHUTDOWN_TIMEOUT", _number(positive=False), 4.0),
        live_lag_limit_ms=get("LIVE_LAG_LIMIT_MS", _integer(1), 5000),
    )
    if config.redis_timeout * 1000 <= config.read_block_ms:
        raise ConfigError(
            f"PROCESSOR_REDIS_TIMEOUT must exceed PROCESSOR_READ_BLOCK_MS "
            f"({config.read_block_ms} ms), got {config.redis_timeout!r}"
        )
    if config.client_queue < 2 * config.read_count:
        # One live message carries up to a batch of positions, a frame each: a smaller queue would drop fans who
        # read promptly (docs/processor.md, section 4, "Delivery guarantees").
        raise ConfigError(
            f"PROCESSOR_CLIENT_QUEUE must be at least 2 x PROCESSOR_READ_COUNT ({2 * config.read_count}), "
            f"got {config.client_queue}"
        )
    return config
