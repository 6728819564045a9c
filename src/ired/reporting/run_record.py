"""One run folder, read and diagnosed: :class:`RunSpec` (what the pipeline knows) -> :class:`RunRecord`.

:func:`load_run` reads metrics.jsonl, status.json, attempts.jsonl, metrics_contract.json and
resolved_config.yaml (through :mod:`ired.runs.jsonl`: a corrupt file is one line naming the file and line; a
``running`` status that no live trainer holds reads as ``interrupted``, :func:`ired.runs.state.run_state`), and the
sweep point of the pipeline's ``config.yaml`` (:func:`read_sweep_point`); finds the run's cross-eval rows and
trivial baselines, runs :func:`ired.reporting.diagnostics.diagnose` and derives the run's status (:data:`STATUSES`) and
a one-sentence key finding backed by numbers. The summary does this once per run and writes the diagnosis to
``runs.csv``, which the plots and the report read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.core.errors import RecordFileError
from ired.core.run_config import OBJECTIVES, is_contrastive
from ired.reporting.cross_eval import baselines_from_cross_eval, cross_eval_rows_for, read_cross_eval
from ired.reporting.diagnosis_types import DEFAULT_THRESHOLDS, Finding, Thresholds
from ired.reporting.diagnostics import diagnose
from ired.reporting.log_rows import as_rows, series
from ired.runs.jsonl import read_json_object, read_jsonl
from ired.runs.paths import RunPaths
from ired.runs.state import run_state

if TYPE_CHECKING:
    import pandas as pd

STATUSES: tuple[str, ...] = (
    "failed-infrastructure",
    "diverged",
    "collapsed",
    "plateau-saturated",
    "ambiguous",
    "stable",
)
"""Run statuses, most severe first; an experiment takes the most severe status among its seeds."""


@dataclass(frozen=True)
class SweepPoint:
    """Where a run sits in a parameter sweep: the sweep's name and its value of each swept (dotted) key."""

    name: str
    point: dict[str, Any]

    @classmethod
    def from_mapping(cls, d: Any, where: str) -> SweepPoint:
        """From ``{name: <sweep>, point: {<dotted key>: <value>, ...}}``; anything else is a one-line
        :class:`RecordFileError` naming ``where``."""
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str) or not d["name"]:
            raise RecordFileError(f"{where}: key sweep: expected {{name: <sweep name>, point: {{<key>: <value>}}}}, "
                                  f"got {d!r}")
        point = d.get("point")
        if not isinstance(point, Mapping) or not point:
            raise RecordFileError(f"{where}: key sweep.point: expected a mapping of swept keys to values, "
                                  f"got {point!r}")
        for key, v in point.items():
            if not isinstance(key, str) or isinstance(v, (Mapping, list)):
                raise RecordFileError(f"{where}: key sweep.point.{key}: expected a dotted key with one value, "
                                      f"got {v!r}")
        extra = set(d) - {"name", "point"}
        if extra:
            raise RecordFileError(f"{where}: key sweep: unknown keys {sorted(extra)} (allowed: name, point)")
        return cls(d["name"], dict(point))


_SWEEP_LINE = re.compile(r"^sweep:", re.M)


def read_sweep_point(run_dir: str | Path) -> SweepPoint | None:
    """The ``sweep`` of the run folder's ``config.yaml`` (written by the pipeline); None for a run outside a
    sweep, or a folder without that file (a run of ``ired train``)."""
    import yaml

    path = RunPaths(Path(run_dir)).config
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not _SWEEP_LINE.search(text):  # most runs: no YAML parse needed
        return None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise RecordFileError(f"{path}{where}: corrupt file, not valid YAML") from None
    if not isinstance(data, Mapping) or data.get("sweep") is None:
        return None
    return SweepPoint.from_mapping(data["sweep"], str(path))

@dataclass
class RunSpec:
    """One training run as the pipeline knows it.

    ``run_id`` is the value of ``run`` in this run's evaluation JSONs (default: the run folder's name); a
    cross-eval row also belongs to the run when its ``checkpoint`` path lies inside ``run_dir``. ``head``,
    ``objective``, ``negatives`` and ``description`` default to the run's ``resolved_config.yaml``; ``sweep``
    (``{name, point}``) to the ``sweep`` of the run folder's ``config.yaml``.
    """

    experiment: str
    seed: int
    run_dir: Path
    description: str | None = None
    head: str | None = None
    objective: str | None = None
    negatives: str | None = None
    run_id: str | None = None
    sweep: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.run_id is None:
            self.run_id = self.run_dir.name

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> RunSpec:
        """Build from a plain mapping (e.g. Snakemake params); unknown keys are an error."""
        allowed = set(cls.__dataclass_fields__)
        extra = set(d) - allowed
        if extra:
            raise ValueError(f"run descriptor: unknown keys {sorted(extra)} (allowed: {sorted(allowed)})")
        return cls(**dict(d))


@dataclass
class RunRecord:
    """A run folder read and diagnosed: files, findings, derived status and key finding."""

    spec: RunSpec
    rows: list[dict[str, Any]]
    status: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    contract: dict[str, str]
    config: dict[str, Any] | None
    config_text: str
    cross_eval: list[dict[str, Any]]
    baselines: dict[str, dict[str, float]]
    findings: list[Finding] = field(default_factory=list)
    run_status: str = "ambiguous"
    key_finding: str = ""
    missing: list[str] = field(default_factory=list)
    sweep: SweepPoint | None = None

    def final(self, column: str) -> tuple[int | None, float | None]:
        """(step, value) of the last row where ``column`` has a value; (None, None) when it never has."""
        pts = series(self.rows, column)
        return (pts[-1][0], pts[-1][1]) if pts else (None, None)

    @property
    def steps(self) -> int | None:
        if self.status and isinstance(self.status.get("step"), int):
            return int(self.status["step"])
        steps = [r["step"] for r in self.rows if isinstance(r.get("step"), (int, float))]
        return int(max(steps)) if steps else None

    @property
    def wall_time_s(self) -> float | None:
        if self.status and isinstance(self.status.get("wall_time_s"), (int, float)):
            return float(self.status["wall_time_s"])
        walls = [w for a in self.attempts if isinstance(w := a.get("wall_time_s"), (int, float))]
        return float(sum(walls)) if walls else None

    @property
    def n_attempts(self) -> int:
        """Rows of attempts.jsonl; a run without a dispatcher log that has a status.json ran once."""
        return len(self.attempts) if self.attempts else (1 if self.status is not None else 0)

    def meta(self, key: str) -> str:
        """head / objective / negatives / description: from the spec, else from the resolved config."""
        given = getattr(self.spec, key)
        if given is not None:
            return str(given)
        cfg = self.config or {}
        found = {
            "head": (cfg.get("model") or {}).get("head"),
            "objective": (cfg.get("objective") or {}).get("name"),
            "negatives": (cfg.get("negatives") or {}).get("name"),
            "description": cfg.get("description"),
        }[key]
        objective = self.meta("objective") if key == "negatives" else None
        if objective in OBJECTIVES and not is_contrastive(objective):
            return "-"  # no contrastive term: the sampler is configured but never used
        return "" if found is None else str(found)

# --------------------------------------------------------------------------------------------------
# Reading a run folder
# --------------------------------------------------------------------------------------------------


def load_run(
    spec: RunSpec | Mapping[str, Any],
    cross_eval: pd.DataFrame | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> RunRecord:
    """Read one run folder, diagnose it and derive its status and key finding.

    The trivial baselines come from this run's cross-eval rows unless ``baselines`` is given.
    """
    return diagnose_run(read_run(spec, cross_eval, baselines), thresholds)


def read_run(
    spec: RunSpec | Mapping[str, Any],
    cross_eval: pd.DataFrame | None = None,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> RunRecord:
    """Read one run folder, not yet diagnosed (:func:`diagnose_run`)."""
    import yaml

    spec = spec if isinstance(spec, RunSpec) else RunSpec.from_mapping(spec)
    d = spec.run_dir
    paths = RunPaths(d)
    missing = [
        path.name
        for path in (paths.metrics, paths.status, paths.metrics_contract, paths.resolved_config)
        if not path.is_file()
    ]
    config_text = paths.resolved_config.read_text() if paths.resolved_config.is_file() else ""
    try:
        config = yaml.safe_load(config_text) if config_text else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise RecordFileError(f"{paths.resolved_config}{where}: corrupt file, not valid YAML") from None
    state = run_state(d)
    status = state.status
    if status is not None and state.state == "interrupted" and status.get("status") != "interrupted":
        status = {**status, "status": "interrupted", "written_status": status.get("status")}
    name = config.get("name") if isinstance(config, dict) else None
    ce_rows = cross_eval_rows_for(cross_eval, d, str(spec.run_id), str(name) if name is not None else None)
    if baselines is None:
        baselines = baselines_from_cross_eval(ce_rows)
    rec = RunRecord(
        spec=spec,
        rows=as_rows(read_jsonl(paths.metrics)),
        status=status,
        attempts=read_jsonl(paths.attempts),
        contract=read_json_object(paths.metrics_contract) or {},
        config=config if isinstance(config, dict) else None,
        config_text=config_text,
        cross_eval=ce_rows,
        baselines={k: dict(v) for k, v in baselines.items()},
        missing=missing,
        sweep=(SweepPoint.from_mapping(spec.sweep, f"run descriptor of {spec.run_id}") if spec.sweep is not None
               else read_sweep_point(d)),
    )
    return rec


def diagnose_run(rec: RunRecord, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> RunRecord:
    """Diagnose a read run (:func:`ired.reporting.diagnostics.diagnose`) and derive its status and key finding, in
    place."""
    rec.findings = diagnose(
        rec.rows,
        status=rec.status,
        contract=rec.contract,
        cross_eval=rec.cross_eval,
        baselines=rec.baselines,
        thresholds=thresholds,
        config=rec.config,
    )
    rec.run_status = derive_status(rec.findings, rec.status, rec.attempts, has_metrics=bool(rec.rows))
    rec.key_finding = run_key_finding(rec)
    return rec


def _data_key(rec: RunRecord) -> str | None:
    """The run's ``data`` config section as text: runs with equal sections share the fixed evaluation sets."""
    data = (rec.config or {}).get("data")
    return json.dumps(data, sort_keys=True) if isinstance(data, dict) else None

def load_runs(
    runs: Iterable[RunSpec | Mapping[str, Any]],
    cross_eval_csv: str | Path | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[RunRecord]:
    """:func:`load_run` for every descriptor, with the cross-eval CSV read once; each run is diagnosed once."""
    cross_eval = read_cross_eval(cross_eval_csv)
    records = [read_run(s, cross_eval) for s in runs]
    # A run without cross-eval rows (e.g. it diverged before any checkpoint was exported) still gets the
    # trivial baselines: they depend only on the evaluation sets, i.e. on the run's `data` config section.
    # Failing that, they are computed from the data section itself (ired.science.data, the same code as evaluation).
    shared = {k: r.baselines for r in records if r.baselines and (k := _data_key(r)) is not None}
    for r in records:
        key = _data_key(r)
        if r.baselines or key is None:
            continue
        if key not in shared:
            shared[key] = baselines_from_config(r.config)
        if shared[key]:
            r.baselines = {k: dict(v) for k, v in shared[key].items()}
    return [diagnose_run(r, thresholds) for r in records]


def baselines_from_config(config: Mapping[str, Any] | None) -> dict[str, dict[str, float]]:
    """Trivial baselines of every split computed from a resolved run config (``ired.science.data.trivial_baselines``);
    {} when the config is missing or invalid."""
    if not config:
        return {}
    try:
        from ired.core.config_io import build_config
        from ired.science.data import SPLITS, trivial_baselines

        cfg = build_config(dict(config), "resolved_config.yaml")
        return {s: trivial_baselines(s, cfg.data.n, cfg.data.split_size(s), cfg.data.eval_seed) for s in SPLITS}
    except Exception:  # noqa: BLE001 - a summary must not fail on one odd config; the baselines stay n/a
        return {}

# --------------------------------------------------------------------------------------------------
# Status and key finding
# --------------------------------------------------------------------------------------------------


def _attempt_kind(a: Mapping[str, Any]) -> str | None:
    for key in ("failure_kind", "kind", "failure"):
        if isinstance(a.get(key), str):
            return a[key]
    return None


def derive_status(
    findings: Sequence[Finding],
    status: Mapping[str, Any] | None,
    attempts: Sequence[Mapping[str, Any]] = (),
    has_metrics: bool = True,
) -> str:
    """One of :data:`STATUSES` for a run, from its findings, status.json and attempt log.

    Precedence: ``diverged`` (a divergence finding, status 'diverged' or a last attempt classified 'diverged')
    > ``failed-infrastructure`` (the run did not complete: no status.json, still 'running', or no metrics)
    > ``collapsed`` > ``plateau-saturated`` > ``ambiguous`` (metric mismatch, worse than trivial, or never
    evaluated) > ``stable``.
    """
    kinds = {f.kind for f in findings}
    last_kind = _attempt_kind(attempts[-1]) if attempts else None
    state = (status or {}).get("status")
    if "divergence" in kinds or state == "diverged" or last_kind == "diverged":
        return "diverged"
    if state != "completed" or not has_metrics:
        return "failed-infrastructure"
    if "collapse" in kinds:
        return "collapsed"
    if "saturation" in kinds:
        return "plateau-saturated"
    if kinds & {"metric_mismatch", "worse_than_trivial"}:
        return "ambiguous"
    return "stable"


_STATUS_FINDING = {
    "diverged": "divergence",
    "collapsed": "collapse",
    "plateau-saturated": "saturation",
}


def run_key_finding(rec: RunRecord) -> str:
    """One generated sentence saying why the run has its status, with the numbers behind it."""
    st = rec.run_status
    if st == "failed-infrastructure":
        return _infra_sentence(rec)
    by_kind = {f.kind: f for f in reversed(rec.findings)}  # first finding of each kind wins
    kind = _STATUS_FINDING.get(st)
    if kind is None and st == "ambiguous":
        kind = "metric_mismatch" if "metric_mismatch" in by_kind else "worse_than_trivial"
    if kind in by_kind:
        sentence = by_kind[kind].message
        if st == "plateau-saturated":
            sentence += _vs_baseline(rec, prefix="; ")
        return _capital(sentence)
    if st == "diverged":  # status says so but no finding carries it (e.g. attempt log only)
        return f"Diverged: {(rec.status or {}).get('detail') or 'the attempt log classifies the failure as diverged'}"
    step, v = rec.final("val_task_mse")
    if v is None:
        return "Completed but never evaluated: val_task_mse is null in every row of metrics.jsonl"
    return _capital(f"no pathology found; {_vs_baseline(rec, prefix='')}")


def _vs_baseline(rec: RunRecord, prefix: str) -> str:
    step, v = rec.final("val_task_mse")
    base = rec.baselines.get("val", {}).get("predict_mean_mse")
    if v is None:
        return ""
    text = f"val_task_mse {v:.4g} (EMA weights, step {step})"
    if base is not None and base > 0:
        rel = (base - v) / base
        text += f" is {abs(rel):.0%} {'below' if rel >= 0 else 'above'} the predict-mean baseline {base:.4g}"
    return prefix + text


def _infra_sentence(rec: RunRecord) -> str:
    state = (rec.status or {}).get("status", "missing")
    where = f"status {state!r}"
    if rec.steps is not None:
        target = (rec.status or {}).get("steps")
        where += f" at step {rec.steps}" + (f" of {target}" if target else "")
    text = f"Did not complete: {where}"
    if rec.attempts:
        last = rec.attempts[-1]
        kind = _attempt_kind(last) or last.get("state") or "unclassified"
        text += f"; {len(rec.attempts)} attempt(s), the last one {kind}"
        if last.get("exit_code") is not None:
            text += f" (exit {last['exit_code']})"
    if not rec.rows:
        text += "; metrics.jsonl is missing or empty"
    return text


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]
