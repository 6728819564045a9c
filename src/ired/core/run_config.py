"""The run configuration's model: :class:`RunConfig` and one model per concern (data, model, diffusion,
objective, negatives, inference, training, fault injection, sweep membership), every key described, with a
default.

A run is fully described by a :class:`RunConfig`. Defaults follow the IRED reference (the paper and its code
release; benchmarks/reference_numbers.yaml); a YAML file and ``--set key=value`` overrides only state differences
(:mod:`ired.core.config_io`). Unknown keys, wrong types and out-of-range values are refused by the models
(:mod:`ired.core.config_messages` words the errors).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ired.core import exit_codes


class StrictModel(BaseModel):
    """Base: unknown keys are errors, assignments are validated, types are strict (no bool or string for an
    int, no string for a number; an int is a valid float), numbers are finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


def _list_to_tuple(value: Any) -> Any:
    """YAML and JSON have lists, not tuples: accept a list where a fixed-length tuple is declared."""
    return tuple(value) if isinstance(value, list) else value


FloatPair = Annotated[tuple[float, float], BeforeValidator(_list_to_tuple)]


class DataConfig(StrictModel):
    n: int = Field(default=20, ge=2, le=64, description="Matrix size: problems are n x n, flattened to n*n values.")
    train_subset_size: int = Field(
        default=1024, ge=1,
        description="Size of the fixed, seeded training-distribution subset used by `train_task_mse`."
    )
    val_size: int = Field(default=1024, ge=1, description="Size of the fixed, seeded in-distribution validation set.")
    val_harder_size: int = Field(
        default=1024, ge=1, description="Size of the fixed, seeded harder (2RR^T + 0.1I) validation set."
    )
    eval_seed: int = Field(
        default=20240701,
        ge=0,
        description="Seed of the fixed evaluation sets; independent of the run seed so every run sees the same "
        "problems.",
    )

    def split_size(self, split: str) -> int:
        """Number of problems of the fixed evaluation split ``split`` (train_subset, val, val_harder)."""
        sizes = {"train_subset": self.train_subset_size, "val": self.val_size, "val_harder": self.val_harder_size}
        if split not in sizes:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(sizes)}")
        return sizes[split]


class ModelConfig(StrictModel):
    head: Literal["vector", "scalar"] = Field(
        default="vector",
        description="Energy head: `vector` E = ||fc4(h)||^2 with fc4: width -> n*n (IRED release); "
        "`scalar` fc4: width -> 1, E unconstrained (IRED paper, Table 8).",
    )
    width: int = Field(default=512, ge=1, description="Hidden width of the energy MLP.")
    depth: int = Field(
        default=3, ge=2, le=16,
        description="Hidden Linear layers before the head; all but the first are FiLM-modulated by t."
    )
    time_dim: int = Field(default=128, ge=2, description="Size of the sinusoidal time embedding and of its MLP.")

    @model_validator(mode="after")
    def _even_time_dim(self) -> ModelConfig:
        if self.time_dim % 2:
            raise ValueError(f"model.time_dim must be even (sin and cos halves), got {self.time_dim}")
        return self


class DiffusionConfig(StrictModel):
    steps: int = Field(default=10, ge=1, le=1000, description="Number of diffusion levels T (t in 0..T-1).")
    cosine_s: float = Field(
        default=0.008, gt=0, lt=1, description="Offset s of the cosine schedule (Nichol & Dhariwal 2021)."
    )


CONTRASTIVE_OBJECTIVES: tuple[str, ...] = ("softplus", "cd", "hinge")
"""Objectives with a contrastive term, and so negatives; each has its term in ``ired.science.losses.CONTRASTIVE_TERMS``
(named here so that a config is validated without torch; tests/test_losses.py checks that the two agree)."""

OBJECTIVES: tuple[str, ...] = ("denoise", *CONTRASTIVE_OBJECTIVES)


def is_contrastive(objective: str) -> bool:
    """Does the objective named ``objective`` add a contrastive term to the denoising loss (and so draw negatives)?
    The one answer for the trainer, the schedules, the dispatcher and the run records."""
    return objective in CONTRASTIVE_OBJECTIVES


class ObjectiveConfig(StrictModel):
    name: Literal[OBJECTIVES] = Field(  # type: ignore[valid-type]
        default="denoise",
        description="Training objective: `denoise` (epsilon MSE only); plus a contrastive term: `softplus` "
        "softplus((E_pos - E_neg)/T) (IRED), `cd` E_pos - E_neg, `hinge` relu(margin + E_pos - E_neg).",
    )
    weight: float = Field(default=0.5, ge=0, description="Weight of the contrastive term in loss_total.")
    contrastive_noise: Literal["fresh", "shared"] = Field(
        default="fresh",
        description="Noise of the contrastive term's positives and negatives. `fresh` (the IRED release): a new "
        "eps2, positive y+_t = q_sample(y, t, eps2), negatives started from and re-noised with eps2 (one more "
        "energy forward per step). `shared` (a deviation, ired's earlier shortcut): reuse the denoising term's eps "
        "and its energy E(x, y_t, t) as the positive; same expectation, correlated terms.",
    )
    temperature: float = Field(default=1.0, gt=0, description="Temperature T of the `softplus` objective.")
    margin: float = Field(default=1.0, ge=0, description="Margin of the `hinge` objective.")
    warmup_steps: int = Field(
        default=0, ge=0, description="Contrastive weight ramps linearly from 0 to `weight` over these steps."
    )
    t_min: int = Field(default=0, ge=0, description="Contrastive term applies only to samples with t >= t_min.")
    t_max: int | None = Field(
        default=None, ge=0,
        description="Contrastive term applies only to samples with t <= t_max (null: no upper bound)."
    )
    energy_reg: float = Field(
        default=0.0, ge=0,
        description="Energy-scale regulariser: adds energy_reg * mean(E_pos^2 + E_neg^2) to the loss."
    )
    start_step: int = Field(
        default=0, ge=0, description="The contrastive term is off before this step (shaping introduced after denoising "
        "has converged); the warm-up starts here."
    )
    margin_final: float | None = Field(
        default=None, ge=0, description="`hinge`: margin ramps linearly from `margin` to this over margin_ramp_steps "
        "(null: constant margin)."
    )
    margin_ramp_steps: int = Field(default=0, ge=0, description="Length of the margin ramp, counted from start_step.")
    adaptive_temperature: bool = Field(
        default=False,
        description="`softplus`: adapt the temperature after every step so frac_sat stays in frac_sat_band."
    )
    frac_sat_band: FloatPair = Field(
        default=(0.1, 0.5), description="Target band [low, high] of frac_sat for the adaptive temperature."
    )
    temperature_rate: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Adaptive temperature: multiply (divide) T by 1 + rate when frac_sat is above (below) the band.",
    )
    sat_threshold: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="frac_sat counts samples whose contrastive-loss gradient dL/d(E_pos - E_neg) is below "
        "sat_threshold times its largest possible value.",
    )

    @property
    def contrastive(self) -> bool:
        """Whether this objective has a contrastive term (and so draws negatives): :func:`is_contrastive`."""
        return is_contrastive(self.name)

    @model_validator(mode="after")
    def _band(self) -> ObjectiveConfig:
        low, high = self.frac_sat_band
        if not 0 <= low < high <= 1:
            raise ValueError(f"objective.frac_sat_band={list(self.frac_sat_band)} must satisfy 0 <= low < high <= 1")
        return self


class NegativesConfig(StrictModel):
    name: Literal["mined", "langevin", "replay"] = Field(
        default="mined",
        description="Negative sampler for contrastive objectives: `mined` (IRED: 3x noise start, gradient steps "
        "kept only if the energy falls), `langevin` (gradient steps with Gaussian noise), `replay` (persistent "
        "chains from a buffer, i.e. PCD).",
    )
    mining: Literal["reference", "fixed"] = Field(
        default="reference",
        description="Step sizes and clamp of the `mined` sampler. `reference` (the IRED release's training-time "
        "mining): the first step is lambda_t, later ones 2 lambda_t, and iterates are clamped with the "
        "(micro-)batch's first sample's level, sqrt(ab_{t_0}) * clamp. `fixed` (a deviation, ired's earlier "
        "rule): every step lambda_t, each sample clamped with its own level. `langevin` and `replay` (no "
        "reference counterpart) always use the `fixed` rule.",
    )
    steps: int = Field(default=2, ge=0, description="Gradient (or Langevin) steps per negative.")
    init_noise: float = Field(
        default=3.0, ge=0, description="Start of the chain: q_sample(y, t, init_noise * eps) (the reference uses 3)."
    )
    step_size_scale: float = Field(
        default=1.0, gt=0,
        description="Step size = step_size_scale * lambda_t, lambda_t = beta_t * sqrt(1/(1-alphabar_t))."
    )
    noise_scale: float = Field(
        default=0.005, ge=0, description="Std of the Gaussian noise of each `langevin`/`replay` step."
    )
    clamp: float = Field(
        default=2.0, gt=0, description="Negatives are mapped to x0 space and clamped to [-clamp, clamp]."
    )
    buffer_size: int = Field(
        default=10000, ge=1, description="`replay`: number of persistent chains kept (in x0 space)."
    )
    replay_prob: float = Field(
        default=0.95, ge=0, le=1,
        description="`replay`: probability that a chain starts from the buffer, not from noise."
    )
    curriculum_steps: int = Field(
        default=0, ge=0, description="Negative-difficulty curriculum: over this many steps (from objective.start_step) "
        "steps, init_noise and replay_prob ramp linearly from their *_start values to their final values (0: off)."
    )
    steps_start: int | None = Field(
        default=None, ge=0, description="Curriculum: gradient steps at the start (null: `steps`)."
    )
    init_noise_start: float | None = Field(
        default=None, ge=0,
        description="Curriculum: init_noise at the start (larger = easier negatives; null: `init_noise`)."
    )
    replay_prob_start: float | None = Field(
        default=None, ge=0, le=1, description="Curriculum: replay_prob at the start (null: `replay_prob`)."
    )


class InferenceConfig(StrictModel):
    steps_per_level: int = Field(default=5, ge=0, description="Gradient steps on E at each diffusion level (K).")
    step_size_scale: float = Field(default=1.0, gt=0, description="Step size = step_size_scale * lambda_t.")
    clamp: float = Field(
        default=2.0, gt=0, description="x0 estimates and iterates are clamped to [-clamp, clamp] (x0 units)."
    )
    batch_size: int = Field(
        default=1024, ge=1, description="Problems per inference chunk (memory only; results do not depend on it)."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the inference start noise y_T ~ N(0, I).")
    kernel: Literal["exact", "compiled"] = Field(
        default="exact",
        description="How inference evaluates E and grad_y E: `exact` (written out, autograd's numbers bit for bit) "
        "or `compiled` (the same compiled by torch.compile: rounded differently, faster at large batches once "
        "compiled; the `reference` protocol stays exact).",
    )


class TrainConfig(StrictModel):
    steps: int = Field(default=50000, ge=1, description="Optimiser steps.")
    batch_size: int = Field(default=2048, ge=1, description="Effective batch: problems per optimiser step.")
    micro_batch: int | None = Field(
        default=None,
        ge=1,
        description="Problems per forward/backward; must divide batch_size. accumulation = batch_size / micro_batch "
        "(null: one micro-batch of batch_size).",
    )
    lr: float = Field(default=1e-4, gt=0, description="Adam learning rate.")
    beta1: float = Field(default=0.9, ge=0, lt=1, description="Adam beta1.")
    beta2: float = Field(default=0.99, ge=0, lt=1, description="Adam beta2.")
    grad_clip: float = Field(default=1.0, gt=0, description="Clip the global gradient norm to this value.")
    ema_rule: Literal["reference", "fixed"] = Field(
        default="reference",
        description="How the EMA (evaluation) weights follow the raw weights. `reference` (the IRED release, "
        "ema-pytorch): act on steps 1, 1+ema_every, ...; copy the raw weights while step-1 <= ema_start and once "
        "more on the next acting step (ema-pytorch's first average starts with a copy), then average with the "
        "warm-up decay min(ema_decay, 1 - (1 + e)^(-ema_power)), e = step - ema_start - 1. "
        "`fixed` (ired before it followed the release; a deviation): copy below ema_start, then the constant "
        "decay ema_decay on every step divisible by ema_every (with ema_start 0 the EMA starts from the random "
        "initialisation).",
    )
    ema_decay: float = Field(
        default=0.995, ge=0, lt=1,
        description="EMA decay of the evaluation weights (the cap of the `reference` warm-up)."
    )
    ema_every: int = Field(default=10, ge=1, description="Update the EMA every this many steps.")
    ema_start: int = Field(
        default=100, ge=0,
        description="Copy phase: the EMA copies the raw weights up to this step (the reference: 100)."
    )
    ema_power: float = Field(
        default=2 / 3,
        gt=0,
        description="`reference` rule: power of the warm-up decay 1 - (1 + e)^(-power) (the reference: 2/3).",
    )
    log_every: int = Field(default=100, ge=1, description="Write one metrics row every this many steps.")
    eval_every: int = Field(
        default=1000, ge=1, description="Evaluate (EMA and raw weights) every this many steps; a multiple of log_every."
    )
    eval_size: int | None = Field(
        default=None, ge=1, description="Problems per split used by periodic evaluation (null: the whole split)."
    )
    checkpoint_every: int = Field(default=1000, ge=1, description="Write a resumable checkpoint every this many steps.")
    keep_checkpoints: int = Field(default=3, ge=1, description="Intermediate checkpoints kept (the newest ones).")
    milestones: list[int] = Field(
        default=[], description="Steps whose checkpoints are always kept (for the checkpoint stage), each in 1..steps."
    )
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (null: torch's default).")
    kernel: Literal["autograd", "fused"] = Field(
        default="autograd",
        description="How the training step computes grad_y E and updates the weights. `autograd` (the reference's "
        "numbers bit for bit): autograd with a double backward, Adam's for-each update, the EMA per parameter. "
        "`fused` (a deviation within float32 rounding): grad_y E written out and backpropagated once, compiled by "
        "torch.compile for long runs at large batches (steps x batch_size >= 10,000,000; never tiny, test or laptop "
        "runs; train.compile), Adam's fused update, the EMA in one for-each call.",
    )
    compile: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Whether `train.kernel: fused` compiles its energy evaluations with torch.compile: `auto` for "
        "long runs at large batches (steps x batch_size >= 10,000,000), where the compile time pays; `always` "
        "(at any size: the parity lockstep of the compiled kernel); `never` (the fused kernel eager).",
    )
    precision: Literal["fp32", "bf16", "tf32"] = Field(
        default="fp32",
        description="Numeric mode of the training step. `fp32` (the reference); `bf16` (a deviation): the loss "
        "and its gradients under bfloat16 autocast, matmuls ~1e-2 relative; `tf32` (a deviation, CUDA only): "
        "float32 matmuls on TensorFloat-32 tensor cores.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.micro_batch is not None and self.batch_size % self.micro_batch:
            raise ValueError(
                f"train.micro_batch={self.micro_batch} must divide train.batch_size={self.batch_size}"
            )
        if self.eval_every % self.log_every:
            raise ValueError(
                f"train.eval_every={self.eval_every} must be a multiple of train.log_every={self.log_every}"
            )
        outside = [m for m in self.milestones if not 1 <= m <= self.steps]
        if outside:
            raise ValueError(
                f"key 'train.milestones': {outside} not allowed (allowed: steps in 1..train.steps={self.steps})"
            )
        return self

    @property
    def accumulation(self) -> int:
        return self.batch_size // (self.micro_batch or self.batch_size)

    @property
    def effective_micro_batch(self) -> int:
        return self.micro_batch or self.batch_size


class FaultsConfig(StrictModel):
    """Fault injection for tests and drills; everything off by default."""

    exit_on_node: str | None = Field(
        default=None,
        description="Exit with `exit_code` at start-up on this node (SLURMD_NODENAME, else the short host "
        "name), every time: a node-failure drill that only excluding the node cures."
    )
    exit_on_first_node: bool = Field(
        default=False,
        description="Exit with `exit_code` at start-up on the node where the run first started, every time it "
        "starts there: the same drill when which node a scheduler picks is not known in advance."
    )
    exit_code: int = Field(
        default=exit_codes.NODE_FAILURE, ge=1, le=127,
        description="Exit code used by `exit_on_node` and `exit_on_first_node`."
    )
    oom_above_micro_batch: int | None = Field(
        default=None, ge=1,
        description="Raise a device out-of-memory error whenever the micro-batch is larger than this."
    )
    kill_at_step: int | None = Field(
        default=None, ge=1, description="SIGKILL the training process when it reaches this step (once)."
    )
    hold_at_step: int | None = Field(
        default=None, ge=1,
        description="Pause the training process after this step (after its checkpoint) until a file "
        "named `release` appears in the run folder (once): a run held in flight for a drill."
    )
    step_delay_s: float | None = Field(
        default=None, ge=0, le=60, description="Sleep this long after every step: a run that lasts a known wall time "
        "whatever the machine's speed (a time-limit drill); changes no number."
    )


class SweepMembership(StrictModel):
    """Which sweep a run belongs to, and its point: set by the registry for the runs of a sweep, never by hand."""

    name: str = Field(min_length=1, description="The sweep: the registry experiment that declares `sweep`.")
    point: dict[str, Any] = Field(
        description="Dotted run-config key -> this run's value of it, e.g. {train.lr: 0.001}."
    )


#: Keys left out of a config dump (config.yaml, resolved_config.yaml) while they hold their default: `sweep` for a
#: run of no sweep, and keys added to the run config after results existed, so that a run's config.yaml stays
#: byte-identical across the upgrade (the resolve job's text is its rerun trigger: a new line would re-evaluate
#: every run).
OMITTED_AT_DEFAULT = ("sweep", "faults.hold_at_step", "faults.step_delay_s", "faults.exit_on_first_node",
                      "train.kernel", "train.precision", "train.compile", "inference.kernel")


class RunConfig(StrictModel):
    name: str = Field(default="run", min_length=1, description="Run name, used in logs and reports.")
    description: str = Field(default="", description="One line saying what this run tests.")
    seed: int = Field(default=0, ge=0, description="Seed of everything random in training (data, noise, init).")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="`auto` uses CUDA when present, else CPU."
    )
    data: DataConfig = Field(default_factory=DataConfig, description="Problem generator and evaluation sets.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Energy network.")
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig, description="Noise schedule.")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig, description="Training objective.")
    negatives: NegativesConfig = Field(default_factory=NegativesConfig, description="Negative sampler.")
    inference: InferenceConfig = Field(default_factory=InferenceConfig, description="Annealed energy optimisation.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimisation, logging and checkpoints.")
    faults: FaultsConfig = Field(default_factory=FaultsConfig, description="Fault injection (off by default).")
    sweep: SweepMembership | None = Field(
        default=None,
        description="The sweep and point of a run of a registry sweep (set by the registry; absent otherwise)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        T = self.diffusion.steps
        if self.objective.t_min >= T:
            raise ValueError(f"objective.t_min={self.objective.t_min} must be < diffusion.steps={T}")
        if self.objective.t_max is not None and self.objective.t_max < self.objective.t_min:
            raise ValueError(
                f"objective.t_max={self.objective.t_max} must be >= objective.t_min={self.objective.t_min}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every key, except those of :data:`OMITTED_AT_DEFAULT` while they hold their default."""
        data = self.model_dump(mode="json")
        for dotted in OMITTED_AT_DEFAULT:
            *parents, key = dotted.split(".")
            section = data
            model: type[BaseModel] = type(self)
            for parent in parents:
                section = section[parent]
                annotation = model.model_fields[parent].annotation
                assert isinstance(annotation, type) and issubclass(annotation, BaseModel), "a section is a model"
                model = annotation
            if section[key] == model.model_fields[key].get_default(call_default_factory=True):
                del section[key]
        return data
