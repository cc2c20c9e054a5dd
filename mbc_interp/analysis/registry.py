"""The extra per-checkpoint analyses (``mbc analyze --kinds``), each declared once.

An extra kind is an :class:`ExtraKind`: its name (the ``analysis`` column of its rows), how it
runs at one checkpoint, its settings dataclass, its cost for the analysis plan, whether it needs
the checkpoint's optimizer state, its entry of the run's summary and its section of the run
report. Everything that handles kinds reads this registry: the command line's ``--kinds``
choices and ``--kind-setting``,
:class:`~mbc_interp.analysis.analysis_config.AnalysisConfig` (validation, and a sweep file's
``[analysis]`` table such as ``llc = { draws = 200 }``), the plan's cost
(:mod:`mbc_interp.analysis.plan`), the timeline (:mod:`mbc_interp.analysis.timeline`, which
records each kind's resolved settings in every step file and refuses to mix two), the summary
(:mod:`mbc_interp.analysis.timing.summary`) and the run report (:mod:`mbc_interp.viz.run_report`).

A new analysis is one module in :mod:`mbc_interp.analysis.kinds` declaring
``KIND = ExtraKind(...)``: the registry finds every module there by looking (on first use, with
no list to edit). A kind from elsewhere (a test, a notebook) is added with :func:`register_kind`.
Declarations stay importable without torch, so ``mbc --help`` stays light: the run, summary and
report functions are named by import path (``"package.module:function"``) and imported on first
use, and settings are plain dataclasses. The report function belongs to the viz layer, which
the analysis layer never imports; the run report resolves the path.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from mbc_interp.analysis.sites import SITE_KINDS
from mbc_interp.core.checks import check_field, is_int

if TYPE_CHECKING:  # annotations only: nothing heavy at import
    import pandas as pd

    from mbc_interp.store.run import OptimizerState, Run
    from mbc_interp.tasks.protocol import Task

RunFunction = Callable[[Any, "Task", Any, "OptimizerState | None"], list[dict[str, Any]]]
"""``(model, task, settings, optimizer_state) -> rows``: the tidy timeline rows of one checkpoint
(without ``step`` and ``tokens``; ``analysis`` defaults to the kind's name)."""
SummaryFunction = Callable[["pd.DataFrame", Mapping[str, Any]], "dict[str, Any] | None"]
"""``(timeline, summary) -> entry``: the kind's entry of the run's summary (``summary.json``,
under the kind's name), from the analysis timeline and the summary's entries before it (a
read-only view: the loss times ``t_loss``, ``t_plateau_start``, ...); ``None``: no entry (too
few checkpoints, say). Called only where the timeline has the kind's rows."""
ReportFunction = Callable[["Run", "pd.DataFrame", dict[str, Any]], Any]
"""``(run, timeline, summary) ->`` a :class:`mbc_interp.viz.report.Section` (``None``: nothing
to show). Typed ``Any``: the analysis layer does not import the viz layer, not even for types."""
RESERVED = frozenset(
    {"core", "attribution", "zuse", "patching", "logit_lens", *(k.name for k in SITE_KINDS),
     "n_pairs", "pair_seed", "n_examples", "patch_kinds", "detail_every", "kinds", "version",
     "extra_settings"}
)  # fmt: skip
"""Names a kind cannot take: the core analyses and patching kinds (their rows and costs share the
namespace) and :class:`AnalysisConfig`'s fields (a kind's settings table sits beside them)."""
_NAME = re.compile(r"[a-z][a-z0-9_]*")
KINDS_PACKAGE = "mbc_interp.analysis.kinds"
"""Where the kinds are declared: every module of this package declares one ``KIND``."""


@dataclass(frozen=True)
class NoSettings:
    """The settings of a kind that has none."""


@dataclass(frozen=True)
class CostContext:
    """What a kind's cost depends on besides its settings: the run's architecture and task."""

    n_layers: int
    n_heads: int
    """Attention heads per layer."""
    k: int
    """The task's K: candidates (selectors) per base string."""
    n_examples: int
    """The task's examples."""
    first_token_distinct: bool = False
    """B's candidates differ at their first token: a candidate loss is one forward pass of the
    example (else each of the K candidate sequences is scored)."""
    prompt_frac: float = 1.0
    """A clean/corrupt pair's prompt (up to the answer position) as a share of a whole
    example's tokens: what one forward pass of a pair costs, in forward passes of an example."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="cost")

        for name in ("n_layers", "n_heads", "k", "n_examples"):
            value = getattr(self, name)
            need(is_int(value) and value >= 1, name, "must be an int >= 1")
        need(0 < self.prompt_frac <= 1, "prompt_frac", "must be in (0, 1]")

    @property
    def heads(self) -> int:
        """Attention heads in all."""
        return self.n_layers * self.n_heads

    @property
    def candidate_passes(self) -> int:
        """Forward passes per example of its candidate-normalised loss."""
        return 1 if self.first_token_distinct else self.k


@dataclass(frozen=True)
class ExtraKind:
    """One extra per-checkpoint analysis, as the registry knows it."""

    name: str
    """``--kinds`` name and the ``analysis`` column of its rows (lower case, ``_``)."""
    run: str | RunFunction
    """Computes the rows at one checkpoint: a :data:`RunFunction`, or its import path
    ``"package.module:function"`` (imported on first use, so torch stays out of start-up)."""
    cost: Callable[[Any, CostContext], float]
    """``(settings, context) -> forward passes`` of one whole example per checkpoint (a
    backward counting two), given the run's architecture and task (:class:`CostContext`); the
    plan turns them into seconds with the model's size."""
    settings: type = NoSettings
    """Frozen dataclass of its settings (importable without torch), every field defaulted; a
    field's annotation decides what a value given on the command line or in a file may be."""
    needs_optimizer_state: bool = False
    """Run gets the checkpoint's optimizer state (``None`` where none was saved)."""
    summary: str | SummaryFunction | None = None
    """Its entry of the run's summary: a :data:`SummaryFunction` or its import path; ``None``:
    no entry."""
    report: str | ReportFunction | None = None
    """Its section of the run report, shown when the timeline has its rows: a
    :data:`ReportFunction` or its import path; ``None``: no section."""
    title: str = ""
    """Heading of its report section (default: its name)."""
    resolve: str | Callable[[Any, Any], Any] | None = None
    """``(run, settings) -> settings``, or its import path: fills in the settings that depend
    on the whole run (the ``fourier`` kind's final key frequencies) before any checkpoint is
    analysed; the resolved settings are the ones recorded with the timeline. ``None``: none."""
    help: str = ""
    """What it computes, in a few words, for ``mbc analyze --help``."""
    needs: tuple[type | str, ...] = ()
    """The task capabilities it reads (protocols such as
    :class:`~mbc_interp.tasks.protocol.HasGroups`, or their import paths): a task lacking one
    is refused, naming the kind, the task and the capability, before any checkpoint is
    analysed (:meth:`check`, run first by :meth:`resolve_function`)."""
    order: int = 1000
    """Where it is listed among the kinds (the ``--kinds`` help, the report's sections, the
    summary's entries): ascending, ties in the order the kinds were found or registered. The
    built-in kinds take 10 to 100; the default lists a new kind after them."""
    summary_order: int | None = None
    """Where its entry sits among the kinds' entries of ``summary.json``, where that differs from
    :attr:`order`: the file's key order is part of its bytes, which a rerun keeps."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name in RESERVED:
            raise ValueError(f"analysis kind {self.name!r}: a name must be lower case letters, "
                             f"digits and '_', and none of {sorted(RESERVED)}")  # fmt: skip
        if not is_dataclass(self.settings):
            raise ValueError(f"analysis kind {self.name!r}: settings must be a dataclass")

    def run_function(self) -> RunFunction:
        return _load(self.run)

    def summary_function(self) -> SummaryFunction | None:
        return None if self.summary is None else _load(self.summary)

    def report_function(self) -> ReportFunction | None:
        return None if self.report is None else _load(self.report)

    def check(self, task: Any) -> None:
        """Raise :class:`~mbc_interp.tasks.protocol.TaskProtocolError` if ``task`` lacks a
        capability of :attr:`needs`."""
        from mbc_interp.tasks.protocol import require

        for need in self.needs:
            require(task, _load(need), f"analysis kind {self.name!r}")

    def supports(self, task: Any) -> bool:
        """Whether ``task`` has every capability of :attr:`needs` (:meth:`check` passes)."""
        from mbc_interp.tasks.protocol import supports

        return all(supports(task, _load(need)) for need in self.needs)

    def resolve_function(self) -> Callable[[Any, Any], Any] | None:
        """``(run, settings) -> settings``, called once per analysis before any checkpoint:
        :meth:`check` on the run's task, then :attr:`resolve` (``None``: neither to do)."""
        own = None if self.resolve is None else _load(self.resolve)
        if own is None and not self.needs:
            return None

        def resolve(run: Any, settings: Any) -> Any:
            self.check(run.task)
            return settings if own is None else own(run, settings)

        return resolve


_KINDS: dict[str, ExtraKind] = {}
_found = False


def discover_kinds(package: str = KINDS_PACKAGE) -> list[ExtraKind]:
    """The ``KIND`` of every module of ``package``, in the order of the modules' names (a name
    starting with ``_`` is a helper, not a kind). A module declaring no :class:`ExtraKind` as
    ``KIND`` is an error naming it: in that package, a module is a kind."""
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, ExtraKind):
            raise TypeError(f"{module.__name__}: a module of {package} declares its analysis "
                            "kind as KIND = ExtraKind(...)")  # fmt: skip
        found.append(kind)
    return found


def _registry() -> dict[str, ExtraKind]:
    """The registered kinds; the first call registers those of :data:`KINDS_PACKAGE`."""
    global _found
    if not _found:
        kinds = discover_kinds()
        _found = True
        for kind in kinds:
            register_kind(kind)
    return _KINDS


def register_kind(kind: ExtraKind, *, replace: bool = False) -> ExtraKind:
    """Add ``kind`` to the registry (``replace``: over one of the same name); returns it."""
    kinds = _registry()
    if kind.name in kinds and not replace:
        raise ValueError(f"analysis kind {kind.name!r} is registered already")
    kinds[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind (tests that register their own take it out again)."""
    get_kind(name)
    del _KINDS[name]


def extra_kinds() -> dict[str, ExtraKind]:
    """Every registered kind by name, in their :attr:`~ExtraKind.order`."""
    return dict(sorted(_registry().items(), key=lambda item: item[1].order))


def summary_kinds() -> list[ExtraKind]:
    """The kinds with a summary function, in the order of their entries in the summary
    (:attr:`~ExtraKind.summary_order`, else :attr:`~ExtraKind.order`)."""
    kinds = [k for k in extra_kinds().values() if k.summary is not None]
    return sorted(kinds, key=lambda k: k.order if k.summary_order is None else k.summary_order)


def kind_names() -> tuple[str, ...]:
    return tuple(extra_kinds())


def get_kind(name: str) -> ExtraKind:
    try:
        return _registry()[name]
    except KeyError:
        raise ValueError(f"unknown analysis kind {name!r} (known: {list(kind_names())})") from None


def build_settings(name: str, given: Mapping[str, Any] | None = None) -> Any:
    """The settings of kind ``name``: its dataclass's defaults with ``given`` (JSON-like values:
    a list for a tuple, an int for a float) over them. Strict: an unknown setting or a value
    of the wrong type is an error naming the kind, the setting and the value."""
    cls = get_kind(name).settings
    given = dict(given or {})
    known = [f.name for f in fields(cls)]
    unknown = [k for k in given if k not in known]
    if unknown:
        raise ValueError(f"{name}.{unknown[0]}: unknown setting (known: {known})")
    hints = get_type_hints(cls)
    values = {k: _coerce(v, hints[k], f"{name}.{k}") for k, v in given.items()}
    return cls(**values)


def settings_record(name: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every setting of kind ``name`` (see :func:`build_settings`) as JSON values: what the
    step files record and compare."""
    return json.loads(json.dumps(asdict(build_settings(name, given))))


def parse_setting(text: str) -> tuple[str, str, Any]:
    """``KIND.NAME=VALUE`` (the command line's ``--kind-setting``) as ``(kind, name, value)``;
    the value is read as JSON (``200``, ``1e-3``, ``true``, ``[0.5, 0.9]``), ``none`` or
    ``null`` as None, anything else as a string."""
    key, sep, raw = text.partition("=")
    kind, dot, name = key.strip().partition(".")
    if not (sep and dot and kind and name):
        raise ValueError(f"--kind-setting {text!r}: expected KIND.NAME=VALUE (e.g. llc.draws=200)")
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        return kind, name, None
    try:
        return kind, name, json.loads(raw)
    except json.JSONDecodeError:
        return kind, name, raw


def _coerce(value: Any, hint: Any, label: str) -> Any:
    """``value`` as the annotation ``hint`` wants it (a list for a tuple becomes one, an int for
    a float a float); a value it does not fit is a ValueError naming ``label``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        hint = options[0] if len(options) == 1 else Any
        origin, args = get_origin(hint), get_args(hint)
    bad = ValueError(f"{label} = {value!r}: must be {_describe(hint)}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
    elif hint is int:
        if not is_int(value):
            raise bad
    elif hint is float:
        if not (is_int(value) or isinstance(value, float)):
            raise bad
        return float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise bad
    elif origin is tuple:
        if not isinstance(value, list | tuple):
            raise bad
        item = args[0] if args else Any
        return tuple(_coerce(v, item, label) for v in value)
    return value


def _describe(hint: Any) -> str:
    if get_origin(hint) is tuple:
        return "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, str(hint))


def _load(ref: str | Callable | type) -> Any:
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
