"""ired.bench: --set changes the size of the timed steps (after the bench's own keys) and every timing is followed
by its process CPU time and the load average."""

from __future__ import annotations

import re

from ired.bench import main


def test_set_and_cpu_lines(capsys):
    main(["--train-only", "--repeats", "1", "--device", "cpu", "--set", "data.n=3", "--set", "model.width=16",
          "--set", "model.time_dim=8", "--set", "train.batch_size=8", "--set", "train.threads=1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("--set data.n=3 model.width=16 model.time_dim=8 train.batch_size=8 train.threads=1")
    names = [line.split(":")[0] for line in out[1:] if not line.startswith("#")]
    assert names == ["train_step_denoise", "train_step_contrastive"]  # --train-only: no inference
    for name in names:
        assert any(re.fullmatch(rf"# {name}: cpu \d+\.\d{{3}} s; load average [\d. ]+ -> [\d. ]+", line) for line in out)
