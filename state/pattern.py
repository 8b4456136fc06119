"""What a pattern is: one typed `PatternSpec`, and the registry that holds them.

A pattern is a compiled LangGraph graph plus everything the rest of the project needs
to run it without knowing its name: the input and options models a run is validated
against, the checks beyond them, the answers its interrupts take, the models its input
picks, how it reports when a supervisor runs it as a worker, and how a terminal shows
it. Everything that runs, nests, serves or shows a pattern reads it from `PATTERNS`.

The four built-in patterns register themselves in `mas_graphs.graphs`; a user's own
registers from Python (`register_pattern(spec)`) or through an entry point:

    [project.entry-points."mas_graphs.patterns"]
    my_pattern = "my_package.pattern:PATTERN"
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from mas_graphs.state.common import AGENT_NAME, ModelPick
from mas_graphs.state.registry import Registry

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from mas_graphs.nodes.context import AgentContext
    from mas_graphs.state.supervisor import WorkerReport

__all__ = [
    "PATTERNS",
    "AnswerFactory",
    "Budgets",
    "EventKind",
    "LiveView",
    "NoOptions",
    "PatternSpec",
    "PatternView",
    "RunEvent",
    "TeamRole",
    "compiled",
    "register_pattern",
]

InputT = TypeVar("InputT", bound=BaseModel)
OptionsT = TypeVar("OptionsT", bound=BaseModel)
EventKind = Literal["node_start", "node_end", "node_error", "progress"]
# An interrupt's payload -> the model a person's answer to it must fit.
AnswerFactory = Callable[[dict[str, Any]], type[BaseModel]]


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened during a run, for progress displays. `path` names the
    workers whose nested runs it happened in, outermost first (empty at the top)."""

    kind: EventKind
    node: str
    task_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    path: tuple[str, ...] = ()


class LiveView(Protocol):
    """A run's progress as it happens: fed every event, drawn by rich on refresh."""

    def on_event(self, event: RunEvent) -> None: ...

    def __rich__(self) -> Any: ...


@dataclass(frozen=True)
class PatternView:
    """How a terminal shows a pattern's runs. `console` is a rich `Console`, `tree` a
    rich `Tree`: the CLI draws, the spec only says with what."""

    # The final result: (console, the run's final values).
    render: Callable[[Any, dict[str, Any]], None]
    # A live view of a run in progress, given its title; None: the generic node table.
    progress: Callable[[str], LiveView] | None = None
    # A nested run of this pattern, under the worker it ran for: (tree, its values).
    team_branch: Callable[[Any, dict[str, Any]], None] | None = None
    # A run so far, read from its checkpoints by another process (`mas watch`): (a
    # LangGraph `StateSnapshot`, nested runs included) -> what to draw.
    watch: Callable[[Any], Any] | None = None


class Budgets(NamedTuple):
    """What a supervisor shares with a team it runs: its depth left and its totals."""

    max_depth: int
    max_agents: int
    max_parallel: int
    max_tokens_per_agent: int | None = None


def one_level(data: Any) -> int:
    return 1


def keep_input(given: dict[str, Any], budgets: Budgets) -> dict[str, Any]:
    return given


@dataclass(frozen=True)
class TeamRole:
    """How a pattern works as a supervisor's worker (a team): its run nests in the
    worker's node, and its conclusion becomes the worker's report."""

    # The nested run's final state -> the worker's report (no model call).
    report: Callable[[dict[str, Any]], WorkerReport]
    # The agents a run of this input puts to work, at every depth.
    agents: Callable[[dict[str, Any]], int]
    # The input field that takes the supervisor's task when the team's input has none
    # (None: the team needs no task, e.g. a scenarios run).
    task_field: str | None = None
    # Levels of nesting an input (as given, not yet validated) asks for, this one included.
    levels: Callable[[Any], int] = one_level
    # The team's input with the parent's budgets passed down (a lead's own team is a
    # level deeper and shares the parent's totals).
    inherit: Callable[[dict[str, Any], Budgets], dict[str, Any]] = keep_input


class NoOptions(BaseModel):
    """The options of a pattern whose build takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class PatternSpec(Generic[InputT, OptionsT]):
    """One pattern, as everything that runs, serves, nests and shows it sees it.

    `build(options, checkpointer=..., model=..., defaults=...)` compiles the graph; the
    options are kept with a thread, so a resume rebuilds the same graph. A run's raw
    input is split by field name: the options model's fields are options, the rest is
    the state input, validated by `input` and then `check` (rules beyond the model,
    e.g. that named tools are registered; raise `ValueError`).
    """

    name: str
    description: str
    input: type[InputT]
    build: Callable[..., CompiledStateGraph[Any, Any, Any, Any]]
    options: type[OptionsT] = NoOptions  # type: ignore[assignment]
    check: Callable[[InputT], None] | None = None
    # Interrupt kind -> the model a person's answer to it must fit.
    answers: Mapping[str, AnswerFactory] = field(default_factory=dict)
    # The models a run's state (input, at every depth) picks for its agents by name.
    model_picks: Callable[[dict[str, Any]], list[ModelPick]] = lambda values: []
    # (a finished run's values, names of its parts) -> the input of a new run of the
    # thread that runs those parts again; `ValueError` says why not. None: no parts.
    restart: Callable[[dict[str, Any], list[str]], dict[str, Any]] | None = None
    # None: it cannot be a supervisor's worker, and `solo_reason` says why.
    team: TeamRole | None = None
    solo_reason: str = "it does not declare how it reports as a team"
    view: PatternView | None = None

    def parse_options(self, options: BaseModel | Mapping[str, Any] | None = None) -> OptionsT:
        """`options` as this pattern's options model (raises pydantic's `ValidationError`)."""
        if isinstance(options, self.options):
            return options
        return self.options.model_validate(dict(options or {}))


# (pattern, options as JSON, id of the defaults) -> the graph, and the defaults it binds
# (held so their id cannot be reused while the entry lives).
_compiled: dict[tuple[str, str, int], tuple[CompiledStateGraph[Any, Any, Any, Any], Any]] = {}
_compiled_lock = threading.Lock()


def compiled(
    spec: PatternSpec[Any, Any],
    options: BaseModel | Mapping[str, Any] | None = None,
    *,
    defaults: AgentContext | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`spec`'s graph built with `options`, without a checkpointer: the one cache of
    compiled graphs. Compiling costs about 20 ms and a compiled graph holds no run state
    (models and context come per invocation), so one per pattern, options and defaults
    serves every run. A nested graph is used as it is (it checkpoints in its parent's
    thread); a top-level run attaches its saver with `.copy(update={"checkpointer": ...})`,
    which costs about 0.1 ms."""
    parsed = spec.parse_options(options)
    key = (spec.name, parsed.model_dump_json(), id(defaults))
    with _compiled_lock:
        if key not in _compiled:
            _compiled[key] = (spec.build(parsed, defaults=defaults), defaults)
        return _compiled[key][0]


def accept_pattern(name: str, item: Any) -> PatternSpec[Any, Any]:
    if not isinstance(item, PatternSpec):
        raise TypeError(f"expected a PatternSpec, got {type(item).__name__}")
    if item.name != name:
        raise TypeError(f"the spec is named {item.name!r}, its entry point {name!r}")
    return item


def load_built_in() -> None:
    # The built-in patterns register when their package is imported; importing it here,
    # on first use, lets a lower layer look a pattern up without importing the graphs.
    importlib.import_module("mas_graphs.graphs")


PATTERNS: Registry[PatternSpec[Any, Any]] = Registry(
    "pattern", "mas_graphs.patterns", accept_pattern, first_use=load_built_in
)


def register_pattern(spec: PatternSpec[Any, Any]) -> PatternSpec[Any, Any]:
    """Make `spec` a pattern like the built-in ones: run, resumed, served, nested, shown."""
    if not isinstance(spec, PatternSpec):
        raise TypeError(f"register_pattern takes a PatternSpec, got {type(spec).__name__}")
    if not re.fullmatch(AGENT_NAME, spec.name):
        raise ValueError(
            f"pattern name {spec.name!r}: a lowercase letter, then up to 63 of a-z 0-9 _ . -"
        )
    if PATTERNS.registered(spec.name) not in (None, spec):
        raise ValueError(f"a pattern named {spec.name!r} is registered already")
    return PATTERNS.register(spec.name, spec)
