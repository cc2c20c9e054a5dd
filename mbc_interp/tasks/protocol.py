"""The task protocol: what training, evaluation, analysis, summary, forecast, report and sweep
may know about a task, whatever it is.

A task is a fixed, seeded table of token sequences with a loss on the positions from
``answer_pos`` on, a split into rows trained on and rows evaluated, an ``evaluate`` that returns
named metrics, and a statement of what its transition and its hidden progress are:

- :class:`Transition`: the logged metric whose drop is the transition (``t_loss``), the scale
  of that loss (chance level: log K for the wind tunnel, log p for modular addition) that
  "solved" and the adaptive checkpoints are measured in, and the level it rests at before the
  drop where the task has one (``None`` where it has none);
- :class:`ProgressSignal`: a hidden-progress signal (a logged metric or a per-checkpoint
  analysis column), with its standard error where it has one, how its onset is read, and
  whether it grows or falls; the first one a task lists is its primary signal, whose onset is
  every summary's ``t_progress``.

Optional capabilities are separate protocols (:class:`HasPatchingPairs`, :class:`HasSelector`,
:class:`HasGroups`, :class:`HasCandidates`, :class:`HasProbeTargets`): an analysis that needs
clean/corrupt pairs, a selector to route, example groups, answer candidates or labels to probe
for checks for them with :func:`supports` and says which task lacks what, instead of assuming a
construction. Nothing outside a task's own package knows how its rows are built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: configs import this module without torch
    from jaxtyping import Float, Int
    from torch import Tensor, nn

    from mbc_interp.tasks.pairs import PatchingPairs

__all__ = [
    "HasCandidates",
    "HasGroups",
    "HasPatchingPairs",
    "HasProbeTargets",
    "HasSelector",
    "NotProvided",
    "ProgressSignal",
    "Task",
    "TaskConfigLike",
    "TaskProtocolError",
    "Transition",
    "require",
    "supports",
]


class TaskProtocolError(TypeError):
    """A task lacks what an analysis needs; the message names the task and the capability."""


class NotProvided(Exception):
    """Raised by a protocol member that a task's config leaves out (the forward wind tunnel has
    no selector): :func:`supports` reads it as the capability missing, :func:`require` says
    why. Tasks raise a subclass that is also their own config error."""


@dataclass(frozen=True)
class TaskEntry:
    """A task's name, where its config class and task class live (``module:attribute``; the
    task class is imported on first use), a one-line summary for ``--help``, and what the
    commands that see only the name (a sweep's table, a report's title) need to know."""

    name: str
    config: str
    task: str
    summary: str
    title: str = ""
    """The phenomenon a run of the task shows, the title of its report (default: the name)."""
    scaling_claims: bool = False
    """Whether ``mbc fit`` fits a sweep of this task to the scaling claims (the plateau's
    duration against the sweep's axes D, K, lr and batch; the routing head's lead; the
    circuit), which need a selector-routing task's run table; a sweep of any other task gets
    the hidden-progress verdicts every task has."""

    def _load(self, ref: str) -> Any:
        module, attr = ref.split(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def config_class(self) -> type:
        return self._load(self.config)

    @property
    def task_class(self) -> type:
        return self._load(self.task)


@dataclass(frozen=True)
class Transition:
    """What the transition of a task is, in terms of its logged metrics."""

    metric: str
    """The logged evaluation metric whose drop is the transition (``t_loss``)."""
    scale: float
    """The metric's chance level in nats: "solved" is below ``solved_frac x scale`` and the
    adaptive checkpoints trigger on moves of ``loss_delta x scale``."""
    rest_level: float | None = None
    """The level the metric rests at before its drop (log K on the wind tunnel): the plateau
    is where the metric stays within 5% of it. ``None`` where the task has no plateau level:
    the plateau then starts where ``rest_from`` is first held below ``solved_frac x scale``."""
    rest_from: str | None = None
    """With no ``rest_level``: the logged metric whose being solved starts the plateau (the
    training loss on modular addition: memorisation done, the test loss not yet fallen)."""
    fallback: str | None = None
    """A metric to time the transition on where ``metric`` never rests at ``rest_level`` (the
    wind tunnel's candidate loss, when the raw loss rests at an alphabet-level value)."""

    def __post_init__(self) -> None:
        if not self.metric:
            raise ValueError("Transition.metric must name a logged metric")
        if self.rest_level is None and self.rest_from is None:
            raise ValueError("Transition: give rest_level or rest_from (where the plateau starts)")
        if not self.scale > 0:
            raise ValueError(f"Transition.scale = {self.scale}: must be > 0")
        if self.rest_level is not None and not self.rest_level >= 0:
            raise ValueError(f"Transition.rest_level = {self.rest_level}: must be >= 0 or None")


@dataclass(frozen=True)
class ProgressSignal:
    """A hidden-progress signal: a quantity that moves before the transition metric does."""

    name: str
    """Column name: a logged metric (``source = "metrics"``) or a column of an analysis
    kind's per-checkpoint table (``source`` = the kind's name)."""
    se: str | None = None
    """Column of its standard error, ``None`` where it has none."""
    source: str = "metrics"
    """``"metrics"`` (evaluated at every evaluation during training) or an analysis kind."""
    direction: Literal["up", "down"] = "up"
    """Whether the signal rises (``up``) or falls (``down``) as the hidden progress is made."""
    baseline: Literal["zero", "rest"] = "zero"
    """What its onset is measured from: ``zero`` (its value for any model without the
    mechanism, as Δz is 0 for a model that ignores z) or ``rest`` (its value where the plateau
    starts, for a signal with no such null value: a weight norm, a restricted loss)."""
    description: str = ""
    """One line on what it measures, for reports."""

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down"):
            raise ValueError(f"ProgressSignal.direction = {self.direction!r}: 'up' or 'down'")
        if self.baseline not in ("zero", "rest"):
            raise ValueError(f"ProgressSignal.baseline = {self.baseline!r}: 'zero' or 'rest'")


@runtime_checkable
class TaskConfigLike(Protocol):
    """A task's configuration: a frozen dataclass that fully determines its data."""

    name: ClassVar[str]

    @property
    def d_vocab(self) -> int: ...
    @property
    def seq_len(self) -> int: ...
    @property
    def n_total(self) -> int:
        """Rows in the task's table (training and held-out)."""
        ...

    @property
    def n_train(self) -> int:
        """Rows trained on (``n_total`` where the task has no held-out split)."""
        ...

    def describe(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def run_name(self, training: str) -> str:
        """A run directory's default name: the task's part joined to ``training`` (the
        training part, ``lr<lr>_b<batch>_s<seed>``)."""
        ...


@runtime_checkable
class Task(Protocol):
    """What every task provides (see the module docstring)."""

    name: ClassVar[str]
    config: Any

    @property
    def tokens(self) -> Int[Tensor, "n seq"]:
        """Every row's full token sequence (training and evaluation rows)."""
        ...

    @property
    def train_rows(self) -> Int[Tensor, " n_train"]:
        """Rows the model is trained on (all rows where the task has no held-out split)."""
        ...

    def eval_rows(self, n_max: int | None, seed: int = 0) -> Int[Tensor, " n_eval"]:
        """Rows an evaluation uses (at most ``n_max`` of each split, seeded and sorted)."""
        ...

    @property
    def answer_pos(self) -> int:
        """The position predicting the first target token; the loss runs from here on."""
        ...

    @property
    def n_targets(self) -> int:
        """Target tokens per row (the loss is summed over them)."""
        ...

    @property
    def fingerprint(self) -> str:
        """sha256 of the token table (and split): identical configs give identical data."""
        ...

    @property
    def transition(self) -> Transition: ...

    @property
    def progress_signals(self) -> tuple[ProgressSignal, ...]:
        """Hidden-progress signals, the primary one first (empty: the task has none)."""
        ...

    @property
    def default_kinds(self) -> tuple[str, ...]:
        """The analysis kinds every checkpoint of this task gets (``core``: the routing
        analyses of a task with a selector; a task's own progress measures)."""
        ...

    def evaluate(self, model: nn.Module, rows: Int[Tensor, " n"], **settings: Any) -> dict:
        """Named metrics of ``model`` on ``rows``; always ``transition.metric`` and ``loss``."""
        ...

    def position_labels(self) -> list[str]:
        """A short label for every position (axis labels of attention plots)."""
        ...

    def token_label(self, token: int) -> str: ...

    def __len__(self) -> int: ...


@runtime_checkable
class HasPatchingPairs(Protocol):
    """Clean/corrupt prompts that differ in one input, for activation and attribution patching."""

    def patching_pairs(self, n: int | None = None, seed: int = 0) -> PatchingPairs:
        """``n`` seeded clean/corrupt pairs (all there are when ``None``), the same for a seed."""
        ...


@runtime_checkable
class HasSelector(HasPatchingPairs, Protocol):
    """A selector token picks each row's answer among the K candidates its context allows (the
    wind tunnel's z among B's K targets): what the core routing analyses read (head attribution
    to the selector, z-use and activation patching on z-corrupted pairs, the logit lens' mass on
    the candidates)."""

    @property
    def K(self) -> int:
        """Candidates per context."""
        ...

    @property
    def selector_positions(self) -> tuple[int, ...]:
        """Positions of the selector."""
        ...

    @property
    def base_positions(self) -> tuple[int, ...]:
        """Positions of the shared context (the wind tunnel's B)."""
        ...

    @property
    def prediction_positions(self) -> tuple[int, ...]:
        """Positions whose next token carries the loss, ``answer_pos`` first."""
        ...

    def candidate_first(self, rows: Int[Tensor, " n"]) -> Int[Tensor, "n K"]:
        """First answer token of each row's K candidates, candidate ``k`` the ``k``-th
        selector's."""
        ...

    def derangement(self, rows: Int[Tensor, " n"], seed: int = 0) -> Int[Tensor, " n"]:
        """For each row, a row of the same context with another selector (fixed per seed)."""
        ...

    def with_selector_of(
        self, rows: Int[Tensor, " n"], donors: Int[Tensor, " n"]
    ) -> Int[Tensor, "n seq"]:
        """The token rows ``rows`` with the selector tokens of ``donors``."""
        ...


@runtime_checkable
class HasGroups(Protocol):
    """Rows grouped by a shared context, each group solved or not at a checkpoint (the wind
    tunnel's base string B and its K examples; modular addition's answer c over the held-out
    pairs): what the ``groups`` analysis kind follows."""

    def group_members(self, n_groups: int, seed: int = 0) -> tuple[list[str], list[Any]]:
        """Names and rows (one tensor each) of ``n_groups`` seeded groups, the same at every
        call (all of them where there are fewer)."""
        ...

    def member_scores(self, model: nn.Module, rows: Int[Tensor, " n"]) -> tuple[Any, Any]:
        """Per row: its loss on the group's question (nats) and whether it is answered right."""
        ...

    @property
    def group_loss_scale(self) -> float:
        """The chance level of :meth:`member_scores`' loss (log K; log p): a group is solved
        below a fraction of it."""
        ...


@runtime_checkable
class HasCandidates(Protocol):
    """Each row's answer is one of a few candidates sharing its context (the wind tunnel's K
    targets of B): a candidate-normalised loss, the right candidate's share of the mass on all
    of them, separates reading the selector from knowing the marginal."""

    def candidate_first_losses(
        self, answer_logp: Float[Tensor, "n d_vocab"], rows: Int[Tensor, " n"]
    ) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
        """Per row, from the log-probabilities at ``answer_pos`` (nats): the *marginal*,
        ``-log`` of the mass on the candidates' first tokens (does the model know the answer
        is one of them?), and the *conditional*, ``-log`` of the right candidate's share of
        that mass (does it know which?)."""
        ...

    def marginal_first_chance(self, rows: Int[Tensor, " n"]) -> Float[Tensor, " n"]:
        """Per row, the marginal of :meth:`candidate_first_losses` for a model that knows only
        the layout (uniform over the answer alphabet): its value before anything is learned."""
        ...


@runtime_checkable
class HasProbeTargets(Protocol):
    """Named integer labels of each row that the residual stream at ``answer_pos`` may carry
    (the wind tunnel's selector z and first target token; modular addition's a, b and c): what
    the ``probes`` analysis kind fits linear probes to."""

    def probe_targets(self, rows: Int[Tensor, " n"]) -> dict[str, Int[Tensor, " n"]]:
        """``{name: label per row}``, the same names for every call."""
        ...


def supports(task: object, capability: type) -> bool:
    """Whether ``task`` provides ``capability`` (one of the protocols above); ``False`` too when
    its class has the members but its config leaves one out (:class:`NotProvided`)."""
    return _missing(task, capability) is None


def require(task: object, capability: type, what: str) -> None:
    """Raise :class:`TaskProtocolError` naming the task, ``what`` needs it and what is missing
    (and why, where the task's config is the reason)."""
    missing = _missing(task, capability)
    if missing is not None:
        name = getattr(task, "name", type(task).__name__)
        raise TaskProtocolError(
            f"{what} needs a task with {capability.__name__}; task {name!r} does not provide it"
            + (f" ({missing})" if missing else "")
        )


def _missing(task: object, capability: type) -> str | None:
    """``None`` when ``task`` provides ``capability``, else why not (``""``: no such members)."""
    try:
        return None if isinstance(task, capability) else ""
    except NotProvided as e:  # the runtime check reads every member, properties included
        return str(e)


@runtime_checkable
class HasKindDefaults(Protocol):
    """Settings of extra analysis kinds calibrated for this task (the ``llc`` kind's SGLD
    step size, say), used for every setting that is neither given nor recorded by an earlier
    analysis of the run."""

    @property
    def kind_defaults(self) -> dict[str, dict[str, Any]]: ...
