"""The run's options, read once from behave's ``-D name=value`` userdata (defaults in behave.ini)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .shards import ShardError, parse_shard

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The run's option values that name services; defined here (the providers import them), so reading the options
#: loads no provider module.
CHOICES = ("auto", "docker", "embedded", "external")
REDIS_IMAGE = "redis:7"
POSTGRES_IMAGE = "timescale/timescaledb:latest-pg16"

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A ``-D`` option has a value the suite cannot use; the message names it."""


def _flag(userdata: Mapping[str, str], name: str) -> bool:
    value = str(userdata.get(name, "false")).strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SettingsError(f"-D {name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class Settings:
    services: str
    require_services: bool
    processor_cmd: list[str]
    order: str
    seed: int | None
    redis_image: str
    postgres_image: str
    redis_url: str | None
    database_url: str | None
    keep_logs: bool
    chromium: str | None = None
    require_browser: bool = False
    #: Scales every deadline the suite waits for (support/clock.py); 2 on a machine twice as slow.
    timeout_factor: float = 1.0
    #: ``-D shard=i/n``: run only shard i of n (support/run/shards.py); ``None``: every scenario.
    shard: tuple[int, int] | None = None

    @classmethod
    def from_userdata(cls, userdata: Mapping[str, str]) -> Settings:
        services = userdata.get("services", "auto")
        if services not in CHOICES:
            raise SettingsError(f"-D services must be one of {', '.join(CHOICES)}, got {services!r}")
        order = userdata.get("order", "defined")
        if order not in ("defined", "random"):
            raise SettingsError(f"-D order must be defined or random, got {order!r}")
        seed_text = userdata.get("seed", "")
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            raise SettingsError(f"-D seed must be an integer, got {seed_text!r}") from None
        command = userdata.get("processor_cmd", "")
        factor_text = userdata.get("timeout_factor", "1")
        try:
            timeout_factor = float(factor_text)
        except ValueError:
            raise SettingsError(f"-D timeout_factor must be a number, got {factor_text!r}") from None
        if not timeout_factor > 0:
            raise SettingsError(f"-D timeout_factor must be positive, got {factor_text!r}")
        shard_text = userdata.get("shard", "")
        try:
            shard = parse_shard(shard_text) if shard_text else None
        except ShardError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            services=services,
            require_services=_flag(userdata, "require_services"),
            processor_cmd=shlex.split(command) if command else [sys.executable, "-m", "processor"],
            order=order,
            seed=seed,
            redis_image=userdata.get("redis_image", REDIS_IMAGE),
            postgres_image=userdata.get("postgres_image", POSTGRES_IMAGE),
            redis_url=userdata.get("redis_url") or os.environ.get("REDIS_URL"),
            database_url=userdata.get("database_url") or os.environ.get("DATABASE_URL"),
            keep_logs=_flag(userdata, "keep_logs"),
            chromium=userdata.get("chromium") or None,
            # CI never skips @browser: there a missing Chromium fails the run (-D require_browser=false to allow it)
            require_browser=_flag({"require_browser": str(os.environ.get("CI") == "true"), **userdata},
                                  "require_browser"),
            timeout_factor=timeout_factor,
            shard=shard,
        )
