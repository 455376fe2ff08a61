"""A throwaway PostgreSQL cluster for tests: initdb in a temporary directory, started on a
free port on 127.0.0.1, removed afterwards.

The server binaries come from the distribution (Debian's ``postgresql`` package puts them
in /usr/lib/postgresql/<version>/bin; ./scripts/test installs it where it can). PostgreSQL
refuses to run as root, so as root the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def server_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres (the newest version found)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_cluster(durable: bool = False) -> Iterator[str]:
    """Start a cluster and yield its connection string (user ``screen``, database
    ``postgres``, trust authentication on 127.0.0.1 only); stop and delete it afterwards.

    Tests run it without fsync (nothing of it must survive); ``durable`` keeps the server's
    defaults (fsync, synchronous commit, full-page writes on), for benchmarks that compare
    it with SQLite's ``synchronous=FULL``.
    """
    binaries = server_binaries()
    if binaries is None:
        raise Unavailable(
            "the PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
            "apt-get install postgresql"
        )
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable(
                "running as root and there is no 'postgres' user to own the cluster"
            ) from None
    directory = Path(tempfile.mkdtemp(prefix="screen-bot-pg-"))
    data, log = directory / "data", directory / "server.log"
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    user = owner.pw_name if owner else None
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(
            [str(binaries / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=user,
            cwd=directory,
            timeout=120,
        )

    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "screen", "-E", "UTF8",
            "--locale=C", *([] if durable else ["--no-sync"]))  # fmt: skip
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c jit=off"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        detail = getattr(err, "stderr", b"") or b""
        tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise Unavailable(
            f"PostgreSQL did not start: {detail.decode(errors='replace')[-500:]} {tail}"
        ) from None
    try:
        yield f"host=127.0.0.1 port={port} user=screen dbname=postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)
