"""Configuration from the environment (processor.config): the documented defaults and overrides, and a missing or
malformed variable refused by name, before anything starts (``python -m processor`` exits 2 with one line), so a
deployment mistake is found at start, not under load."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from processor.config import ConfigError, load

ROOT = Path(__file__).resolve().parents[2]  # the repository, where python -m processor runs
BASE = {
    "PROCESSOR_REDIS_URL": "redis://127.0.0.1:6379/0",
    "PROCESSOR_DATABASE_URL": "postgresql://user@127.0.0.1:5432/live",
    "PROCESSOR_DIRECTUS_URL": "https://cms.example.com/",
}


def test_defaults():
    config = load(BASE)
    assert (config.host, config.port, config.stream, config.group) == ("127.0.0.1", 8080, "telemetry:teltonika",
                                                                       "processor")
    assert config.dead_stream == "telemetry:teltonika:dead" and config.live_channel == "telemetry:teltonika:live"
    assert config.directus_url == "https://cms.example.com"
    assert config.allowed_origins == () and config.group_start_id == "0"
    assert config.consumer.endswith(f"-{os.getpid()}")
    assert (config.read_count, config.read_block_ms, config.redis_timeout) == (500, 1000, 5.0)
    assert (config.client_queue, config.max_frame_bytes, config.subscribe_rate,
            config.max_subscriptions) == (1024, 65536, 20, 50)


def test_overrides():
    config = load({**BASE, "PROCESSOR_PORT": "9000", "PROCESSOR_ALLOWED_ORIGINS": "https://a.example, https://b.example,",
                   "PROCESSOR_GROUP_START_ID": "$", "PROCESSOR_LOG_LEVEL": "debug",
                   "PROCESSOR_DIRECTUS_TIMEOUT": "0.5"})
    assert config.port == 9000 and config.group_start_id == "$" and config.log_level == "DEBUG"
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert config.directus_timeout == 0.5


@pytest.mark.parametrize("name", ["PROCESSOR_REDIS_URL", "PROCESSOR_DATABASE_URL", "PROCESSOR_DIRECTUS_URL"])
def test_required(name):
    env = dict(BASE)
    del env[name]
    with pytest.raises(ConfigError, match=name):
        load(env)


@pytest.mark.parametrize("name, value", [
    ("PROCESSOR_PORT", "abc"), ("PROCESSOR_PORT", "0"), ("PROCESSOR_PORT", "65536"),
    ("PROCESSOR_REDIS_URL", "http://x"), ("PROCESSOR_DATABASE_URL", "mysql://x"), ("PROCESSOR_DIRECTUS_URL", "cms"),
    ("PROCESSOR_LOG_LEVEL", "LOUD"), ("PROCESSOR_DIRECTUS_TIMEOUT", "0"), ("PROCESSOR_DIRECTUS_TIMEOUT", "nan"),
    ("PROCESSOR_READ_COUNT", "0"), ("PROCESSOR_READ_BLOCK_MS", "-1"), ("PROCESSOR_CLAIM_IDLE_MS", "1.5"),
    ("PROCESSOR_CLIENT_QUEUE", "x"), ("PROCESSOR_MAX_FRAME_BYTES", "0"), ("PROCESSOR_PING_INTERVAL", "-1"),
    ("PROCESSOR_PING_TIMEOUT", "inf"), ("PROCESSOR_SUBSCRIBE_RATE", "0"), ("PROCESSOR_MAX_SUBSCRIPTIONS", "0"),
    ("PROCESSOR_SHUTDOWN_TIMEOUT", "-1"), ("PROCESSOR_GROUP_START_ID", "latest"),
    ("PROCESSOR_REDIS_TIMEOUT", "1.0"),  # must exceed READ_BLOCK_MS (1000 ms)
    ("PROCESSOR_CLIENT_QUEUE", "999"),  # at least 2 x READ_COUNT (500)
])
def test_malformed(name, value):
    with pytest.raises(ConfigError, match=name):
        load({**BASE, name: value})


def _run(env):
    return subprocess.run([sys.executable, "-m", "processor"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=20)


def test_empty_environment_exits_2_naming_the_variable():
    result = _run({"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["configuration error: PROCESSOR_REDIS_URL is required"]


def test_malformed_port_exits_2():
    result = _run({**BASE, "PROCESSOR_PORT": "abc"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("configuration error: PROCESSOR_PORT must be an integer between 1 and 65535, "
                                     "got 'abc'")


def test_client_queue_follows_the_batch_size():
    """The queue must hold two whole live messages (one a frame per position of a batch): 2 x READ_COUNT, whatever
    READ_COUNT is; a smaller one is refused, naming both variables."""
    assert load({**BASE, "PROCESSOR_READ_COUNT": "50", "PROCESSOR_CLIENT_QUEUE": "100"}).client_queue == 100
    with pytest.raises(ConfigError, match=r"PROCESSOR_CLIENT_QUEUE .*PROCESSOR_READ_COUNT"):
        load({**BASE, "PROCESSOR_READ_COUNT": "50", "PROCESSOR_CLIENT_QUEUE": "99"})
    with pytest.raises(ConfigError, match="PROCESSOR_CLIENT_QUEUE"):
        load({**BASE, "PROCESSOR_READ_COUNT": "600"})  # the default queue (1024) is too small for it


def test_empty_counts_as_unset():
    """``PROCESSOR_X=`` (or blanks) is no value: the default applies, and a required variable is missing."""
    config = load({**BASE, "PROCESSOR_PORT": "", "PROCESSOR_LOG_LEVEL": "  ", "PROCESSOR_STREAM": ""})
    assert (config.port, config.log_level, config.stream) == (8080, "INFO", "telemetry:teltonika")
    with pytest.raises(ConfigError, match="PROCESSOR_DATABASE_URL is required"):
        load({**BASE, "PROCESSOR_DATABASE_URL": ""})
