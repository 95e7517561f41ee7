"""Start a JupyterLab server for a test, wait until it answers, and stop it afterwards."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(argv=None, *, cwd=None, env=None, extra=(), token="nbkernels-test"):
    """Run ``argv`` (default ``python -m jupyter lab``) plus the flags a headless test needs and ``extra``;
    yields the server's base URL once ``/api/status`` answers (within 60 s), and stops it on exit."""
    port = free_port()
    argv = list(argv or [sys.executable, "-m", "jupyter", "lab"])
    proc = subprocess.Popen(
        argv + ["--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
                *extra],
        cwd=cwd, env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv} exited with {proc.returncode} before answering")
                time.sleep(0.5)
        else:
            raise RuntimeError("jupyter lab did not answer within 60 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
