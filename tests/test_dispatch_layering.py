"""The dispatcher head waits; it never loads torch (seconds of import, and memory, on a login node): importing the
dispatcher, building the `ired` command line and asking `ired status` load neither torch nor submitit's executors
until a job is submitted. Runs in a fresh interpreter (this test process has torch loaded by conftest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from pathlib import Path
import ired.dispatch, ired.dispatch.runner, ired.dispatch.executor, ired.dispatch.cancel, ired.dispatch.status
import ired.dispatch.cli, ired.cli
from ired.dispatch import load_settings
from ired.dispatch.backends import BACKENDS, backend
from ired.dispatch.runs import find_runs
from ired.dispatch.status import collect
ired.cli.build_parser()
settings = load_settings(sys.argv[1])
assert backend(settings).cluster == "slurm" and set(BACKENDS) == {"slurm", "local"}
collect(find_runs(Path(sys.argv[2])), lambda ids: {}, lambda ids: [])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy", "submitit"))))
"""

REPO = Path(__file__).resolve().parents[1]


def test_the_dispatcher_head_imports_no_torch(tmp_path: Path) -> None:
    (tmp_path / "tiny" / "q101-s0").mkdir(parents=True)
    (tmp_path / "tiny" / "q101-s0" / "config.yaml").write_text("name: q101-s0\n")
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "profiles" / "slurm" / "dispatch.yaml"),
                          str(tmp_path / "tiny")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.splitlines()[-1])
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "numpy")], loaded
    assert not [m for m in loaded if m.startswith("submitit.slurm")], loaded  # submitted jobs load it, not imports
