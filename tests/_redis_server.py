"""Private Redis servers for the tests: a single node we may stop, restart and flush, and a 3-node cluster.

Every server listens on 127.0.0.1 only, on a free port, with no persistence, in its own directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisCluster", "RedisServer", "free_port", "redis_server_binary"]


def redis_server_binary() -> str | None:
    """Path of ``redis-server`` on PATH, or None."""
    return shutil.which("redis-server")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(also_plus: int = 0) -> int:
    """A free loopback port (and, with ``also_plus``, port + also_plus free too, for a cluster bus)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if also_plus and (port + also_plus > 65535 or not _port_free(port + also_plus)):
            continue
        return port
    raise RuntimeError("no free loopback port")


def _ping(port: int, password: str | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        if password:
            sock.sendall(f"AUTH {password}\r\n".encode())
            sock.recv(64)
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self, directory: Path, *, port: int | None = None, args: tuple[str, ...] = (),
                 password: str | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not on PATH")
        self.binary = binary
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.password = password
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no", *self.args,
        ]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            try:
                if _ping(self.port, self.password).startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING in {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisCluster:
    """Three master nodes (no replicas) on free loopback ports, joined with ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, nodes: int = 3) -> None:
        self.directory = directory
        self.servers: list[RedisServer] = []
        ports: list[int] = []
        while len(ports) < nodes:
            port = free_port(also_plus=10000)
            if port not in ports:
                ports.append(port)
        for port in ports:
            self.servers.append(
                RedisServer(
                    directory / str(port),
                    port=port,
                    args=("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                          "--cluster-node-timeout", "2000"),
                )
            )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.servers[0].port}/0"

    def start(self, timeout: float = 30.0) -> None:
        for server in self.servers:
            server.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise FileNotFoundError("redis-cli is not on PATH")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for server in self.servers:
                out = subprocess.run([cli, "-p", str(server.port), "cluster", "info"], capture_output=True,
                                     text=True, timeout=5).stdout
                states.append("cluster_state:ok" in out)
            if all(states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()

    def __enter__(self) -> RedisCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def in_ci() -> bool:
    """True under CI (``CI=true``): a missing Redis fails the tests instead of skipping them."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")
