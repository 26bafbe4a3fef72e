"""HQ for the cloud_sync tests: in a thread (API tests) or as a real process (crash tests)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.hq.server import HqServer
from tests.cloud_sync.helpers import ADMIN, Clock, Hq, HqProcess, free_port


def _postgres_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster for the session (skipped where there is none)."""
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (storeedge[postgres])")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (initdb not found)")
    run_as: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="storeedge-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user")
        os.chown(data, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*run_as, *cmd], check=True, capture_output=True, timeout=60)

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data / "db"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off"
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data / "db"),
            "-o",
            options,
            "-l",
            str(data / "log"),
            "-w",
            "start",
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(data, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh database of the session's cluster."""
    import psycopg  # noqa: PLC0415 - optional

    name = f"hq_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def hq_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """HQ's database: a SQLite file, and a PostgreSQL database where there is one."""
    if request.param == "sqlite":
        return str(tmp_path / "hq.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def hq(hq_target: str) -> Iterator[Hq]:
    clock = Clock()
    server = HqServer(hq_target, admin_token=ADMIN, stale_after_s=60, clock_ms=clock)
    server.start()
    try:
        yield Hq(server, clock)
    finally:
        server.stop()


@pytest.fixture
def hq_process(tmp_path: Path) -> Iterator[HqProcess]:
    proc = HqProcess(tmp_path / "hq.db", tmp_path / "hq.log")
    try:
        yield proc
    finally:
        proc.kill()
