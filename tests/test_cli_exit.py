"""The ``normcore`` executable's quick exit (:func:`normcore.cli.run`): the exit code of
the command, everything it printed, exit handlers registered while it ran, and the
usual interpreter exit after an uncaught exception."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _normcore(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "normcore.cli", *argv], capture_output=True, text=True)


def test_exit_codes_and_output_survive_the_quick_exit(tmp_path: Path) -> None:
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 4.0]}), data)
    artifact = tmp_path / "a.json"
    fitted = _normcore("fit", str(data), "--artifact", str(artifact))
    assert (fitted.returncode, fitted.stdout) == (0, f"artifact: {artifact} (3 rows, 1 features)\n")
    shown = _normcore("inspect", str(artifact))
    assert shown.returncode == 0 and shown.stdout.endswith("\n") and "x" in shown.stdout
    refused = _normcore("fit", str(tmp_path / "missing.parquet"), "--artifact", str(tmp_path / "b.json"))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1


def _run_with_command(body: str) -> subprocess.CompletedProcess[str]:
    """``normcore.cli.run()`` with ``main`` replaced by ``body`` (a function ``command``)."""
    probe = f"import atexit, sys\nimport normcore.cli as cli\n{body}\ncli.main = command\ncli.run()\n"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)


def test_exit_handlers_registered_by_the_command_still_run() -> None:
    done = _run_with_command(
        "def command():\n"
        "    atexit.register(print, 'engine handler ran', flush=False)\n"
        "    sys.stdout.write('partial line without newline')\n"
        "    return 1\n"
    )
    assert done.returncode == 1
    assert done.stdout == "partial line without newlineengine handler ran\n"


def test_an_uncaught_exception_exits_as_usual() -> None:
    done = _run_with_command("def command():\n    raise RuntimeError('boom')\n")
    assert done.returncode == 1
    assert "RuntimeError: boom" in done.stderr


def _threads_after_numpy(environment: dict[str, str]) -> int:
    """Threads of a ``normcore.cli.run()`` process once its command has imported NumPy."""
    body = (
        "import os\n"
        "def command():\n"
        "    import numpy\n"
        "    print(len(os.listdir('/proc/self/task')))\n"
        "    return 0\n"
    )
    probe = f"import normcore.cli as cli\n{body}\ncli.main = command\ncli.run()\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_openblas_starts_no_thread_pool_unless_the_environment_asks() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _threads_after_numpy(environment) == 1
    assert _threads_after_numpy({**environment, "OPENBLAS_NUM_THREADS": "2"}) == 2
