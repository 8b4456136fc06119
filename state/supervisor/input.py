"""What a supervisor run starts from: its workers, its input and options, validated
before any work starts, and what it shares with the teams it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mas_graphs.state.common import (
    AGENT_NAME,
    DEFAULT_MAX_PARALLEL,
    PART_NAME,
    ModelChoice,
    TokenLimits,
    validation_problems,
)
from mas_graphs.state.pattern import PATTERNS, Budgets, TeamRole
from mas_graphs.state.registry import UnknownNameError

MAX_TASK_CHARS = 20_000
# Workers per supervisor: the operator's setting (MAS_MAX_WORKERS, passed as validation
# context) caps them, by default at 16; MAX_WORKERS bounds the setting and the schemas.
DEFAULT_MAX_WORKERS = 16
MAX_WORKERS = 1_000
DEFAULT_MAX_STEPS = 10
MAX_STEPS = 25
MAX_REVISE_ROUNDS = 3
MAX_PARALLEL = 64
MAX_DEPTH = 4
MAX_AGENTS = 4 * MAX_WORKERS  # bounded in practice by MAS_MAX_WORKERS per supervisor
MAX_REPLANS = 5
MAX_FINDINGS = 4  # a worker report's findings

WorkerKind = Literal["role", "agent", "team"]


# --- input -------------------------------------------------------------------------


class WorkerSpec(BaseModel):
    """One worker: a role agent (a role prompt around a model, the default), an agent
    registered in Python (`agent`), or a whole pattern run as a subgraph (`pattern`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PART_NAME, description="Identifier, e.g. 'researcher'.")
    role: str = Field(
        default="",
        max_length=4_000,
        description="What this worker does: a role agent's instructions; for an agent or "
        "a team, what the planner is told it does.",
    )
    agent: str | None = Field(
        default=None, pattern=AGENT_NAME, description="A registered agent does the work."
    )
    pattern: str | None = Field(
        default=None,
        pattern=AGENT_NAME,
        description="A whole pattern does the work, as a nested run: any registered "
        "pattern that can be a team (the built-in supervisor, debate and scenarios).",
    )
    input: dict[str, Any] | None = Field(
        default=None,
        description="The nested run's input (its task or question defaults to this task).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="The nested run's build options (filled in)."
    )
    tools: list[str] = Field(
        default_factory=list, max_length=8, description="Registered tool names it may call."
    )
    model: ModelChoice | None = Field(
        default=None,
        description="Its own model: ollama:<model>, llamacpp or a registered model name.",
    )
    temperature: float | None = Field(default=None, ge=0, le=2, description="Its sampling.")
    max_steps: int = Field(
        default=DEFAULT_MAX_STEPS, ge=1, le=MAX_STEPS, description="Most tool calls it makes."
    )
    revise_rounds: int = Field(
        default=0,
        ge=0,
        le=MAX_REVISE_ROUNDS,
        description="Critic-and-revise rounds on its report; stops once the critic accepts.",
    )
    memory_tokens: int | None = Field(
        default=None,
        ge=50,
        le=1_000_000,
        description="Most tokens of tool results its ReAct loop keeps word for word "
        "(default: half its model's context); older ones are summarised, a line each.",
    )
    depends_on: list[Annotated[str, Field(pattern=PART_NAME)]] = Field(
        default_factory=list,
        max_length=MAX_WORKERS,
        description="Workers whose results this one needs first: with planning "
        "'declared' the plan, with 'planner' a constraint the plan keeps.",
    )
    kind: WorkerKind = Field(default="role", description="Set from the fields above.")

    @field_validator("pattern")
    @classmethod
    def _nestable(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            team_role(pattern)
        return pattern

    @model_validator(mode="after")
    def _one_kind(self) -> WorkerSpec:
        if self.agent and self.pattern:
            raise ValueError("a worker is an agent or a team (pattern), not both")
        kind: WorkerKind = "agent" if self.agent else "team" if self.pattern else "role"
        if "kind" in self.model_fields_set and self.kind != kind:
            raise ValueError(f"kind: the fields given make this a {kind} worker, not {self.kind}")
        if kind == "role" and not self.role.strip():
            raise ValueError("role: a role worker needs a role (or give agent or pattern)")
        if kind != "role":
            fields = type(self).model_fields
            given = [
                f
                for f in ROLE_ONLY
                if getattr(self, f) != fields[f].get_default(call_default_factory=True)
            ]
            if given:
                raise ValueError(f"{', '.join(given)}: only a role worker has these")
        if kind != "team" and (self.input is not None or self.options):
            raise ValueError("input: only a team (a worker with pattern) has an input")
        self.kind = kind
        return self


# Per-worker settings that shape a role agent's model calls; an agent or a team has
# its own (a team's go in its input: its workers' models, its revise_rounds).
ROLE_ONLY = ("tools", "model", "temperature", "max_steps", "revise_rounds", "memory_tokens")


DEFAULT_TEAM: tuple[WorkerSpec, ...] = (
    WorkerSpec(
        name="researcher",
        role="Gather the facts the task depends on and state them plainly, with caveats.",
    ),
    WorkerSpec(
        name="analyst",
        role="Weigh the options against each other and say which is better and why.",
    ),
    WorkerSpec(
        name="critic",
        role="Look for risks, weak assumptions and what the others may have missed.",
    ),
)


class SupervisorInput(TokenLimits):
    """What a supervisor run starts from; validated before any work starts."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=MAX_TASK_CHARS)
    workers: list[WorkerSpec] = Field(
        default_factory=lambda: list(DEFAULT_TEAM), min_length=1, max_length=MAX_WORKERS
    )
    planning: Literal["planner", "declared", "parallel"] = Field(
        default="planner",
        description="planner: a model plans the batches (keeping declared depends_on) and "
        "gives each worker its part; declared: the workers' depends_on is the plan, with no "
        "planning call; parallel: every worker runs once, all in one batch (a plain "
        "fan-out).",
    )
    review_plan: bool = Field(
        default=False, description="Pause after planning for a person to approve the plan."
    )
    conflict_scan: bool = Field(
        default=True,
        description="Ask a model which reports contradict each other before the synthesis "
        "(off: the synthesis alone weighs them).",
    )
    conflict_gap: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Confidence gap at which a conflict is settled by confidence alone; "
        "smaller gaps go to LLM arbitration.",
    )
    max_replans: int = Field(
        default=0,
        ge=0,
        le=MAX_REPLANS,
        description="How often the planner may revise the rest of the plan after a batch.",
    )
    on_worker_failure: Literal["fallback", "replan"] = Field(
        default="fallback",
        description="When a worker's retries run out: a fallback worker stands in, or "
        "(while replans remain) the planner replans the rest.",
    )
    max_parallel: int = Field(
        default=DEFAULT_MAX_PARALLEL,
        ge=1,
        le=MAX_PARALLEL,
        description="Model calls in flight at once, across the whole run and its teams.",
    )
    max_depth: int = Field(
        default=3,
        ge=1,
        le=MAX_DEPTH,
        description="Levels of nested patterns, this one included (1: no teams).",
    )
    max_agents: int = Field(
        default=32, ge=1, le=MAX_AGENTS, description="Agents at every depth, in all."
    )
    escalate_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="A synthesis less confident than this, or any failed worker, goes to "
        "a person before the run ends.",
    )
    revise_rounds: int = Field(
        default=0,
        ge=0,
        le=MAX_REVISE_ROUNDS,
        description="Critic-and-revise rounds on the synthesis; stops once the critic accepts.",
    )

    @field_validator("task")
    @classmethod
    def _task_not_blank(cls, task: str) -> str:
        if not task.strip():
            raise ValueError("task must not be blank")
        return task.strip()

    @field_validator("workers")
    @classmethod
    def _unique_names(cls, workers: list[WorkerSpec], info: ValidationInfo) -> list[WorkerSpec]:
        if len(workers) > (limit := worker_limit(info)):
            raise ValueError(
                f"at most {limit} workers per supervisor (the operator's MAS_MAX_WORKERS), "
                f"not {len(workers)}"
            )
        names = [w.name for w in workers]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"worker names must be unique; repeated: {', '.join(dupes)}")
        return workers

    @model_validator(mode="after")
    def _teams_within_limits(self, info: ValidationInfo) -> SupervisorInput:
        """Each team's input is checked as its own run's would be, with this task as its
        default task and this run's limits passed down; then depth and agents in all."""
        if self.on_worker_failure == "replan" and self.max_replans == 0:
            raise ValueError("on_worker_failure: 'replan' needs max_replans of at least 1")
        declared_layers(self)  # a declared dependency names a worker, and forms no cycle
        # Depth first, from the input as given, so the error names the whole nesting
        # rather than a limit passed down running out somewhere inside it.
        if (depth := supervisor_levels(self.model_dump())) > self.max_depth:
            raise ValueError(
                f"teams nest {depth} levels deep (this run included); max_depth is {self.max_depth}"
            )
        for worker in self.workers:
            if worker.kind == "team":
                worker.input, worker.options = team_input(self, worker, info.context)
        if (agents := supervisor_agents(self.model_dump())) > self.max_agents:
            raise ValueError(
                f"{agents} agents at every depth in all; max_agents is {self.max_agents}"
            )
        return self


def dependency_layers(needs: Mapping[str, set[str]], order: list[str]) -> list[list[str]]:
    """Workers grouped into batches that each wait only for earlier ones, in `order`
    within a batch; `ValueError` naming the workers of a cycle."""
    layers: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(needs):
        ready = [w for w in order if w in needs and w not in done and needs[w] <= done]
        if not ready:
            raise ValueError(
                "the dependencies form a cycle: " + ", ".join(sorted(set(needs) - done))
            )
        layers.append(ready)
        done.update(ready)
    return layers


def declared_layers(data: SupervisorInput) -> list[list[str]]:
    """The batches the workers' own `depends_on` declares (every worker, each once)."""
    names = [w.name for w in data.workers]
    declared = [w for w in data.workers if w.depends_on]
    if declared and data.planning == "parallel":
        raise ValueError(
            "depends_on: a parallel plan runs every worker at once; use planning "
            "'declared' (or 'planner')"
        )
    for worker in declared:
        if unknown := sorted(set(worker.depends_on) - set(names)):
            raise ValueError(
                f"workers[{worker.name}].depends_on: unknown workers {', '.join(unknown)}"
            )
        if worker.name in worker.depends_on:
            raise ValueError(f"workers[{worker.name}].depends_on: a worker cannot wait for itself")
    needs = {w.name: set(w.depends_on) for w in data.workers}
    try:
        return dependency_layers(needs, names)
    except ValueError as error:
        raise ValueError(f"depends_on: {error}") from None


def team_role(pattern: str) -> TeamRole:
    """How `pattern` works as a worker, or `ValueError` saying why it cannot be one."""
    try:
        spec = PATTERNS.get(pattern)
    except UnknownNameError as error:
        raise ValueError(str(error)) from None
    if spec.team is None:
        raise ValueError(f"a {pattern} cannot be a worker: {spec.solo_reason}")
    return spec.team


def team_input(
    parent: SupervisorInput, worker: WorkerSpec, limits: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A team worker's input (state) and options, validated like a run's."""
    assert worker.pattern is not None
    spec = PATTERNS.get(worker.pattern)
    role = team_role(worker.pattern)
    given = dict(worker.input or {})
    given = {**given, **{k: v for k, v in worker.options.items() if k not in given}}
    if role.task_field and role.task_field not in given:
        given[role.task_field] = parent.task
    budgets = Budgets(
        parent.max_depth, parent.max_agents, parent.max_parallel, parent.max_tokens_per_agent
    )
    given = role.inherit(given, budgets)
    option_fields = set(spec.options.model_fields)
    state = {k: v for k, v in given.items() if k not in option_fields}
    options = {k: v for k, v in given.items() if k in option_fields}
    where = f"workers[{worker.name}].input"
    try:
        parsed = spec.input.model_validate(state, context=limits)
        parsed_options = spec.options.model_validate(options)
    except ValidationError as error:
        raise ValueError(f"{where}: {validation_problems(error)}") from None
    return parsed.model_dump(), parsed_options.model_dump()


def share_budgets(given: dict[str, Any], budgets: Budgets) -> dict[str, Any]:
    """A team lead's team is one level down, and shares its parent's budgets."""
    return {
        **given,
        "max_depth": min(given.get("max_depth", budgets.max_depth), budgets.max_depth - 1),
        "max_agents": given.get("max_agents", budgets.max_agents),
        "max_parallel": given.get("max_parallel", budgets.max_parallel),
        "max_tokens_per_agent": given.get("max_tokens_per_agent", budgets.max_tokens_per_agent),
    }


def worker_limit(info: ValidationInfo) -> int:
    """The operator's cap on a supervisor's workers, from the validation context."""
    context = info.context if isinstance(info.context, dict) else {}
    return int(context.get("max_workers") or DEFAULT_MAX_WORKERS)


def supervisor_levels(data: Any) -> int:
    """How many levels of patterns a supervisor run is: 1, plus its deepest team's.
    Reads input as given (not yet validated), so anything malformed counts as one level
    and is left for validation to name."""
    workers = data.get("workers") if isinstance(data, dict) else None
    if not isinstance(workers, list):
        return 1
    nested = [
        team_levels(w["pattern"], w.get("input"))
        for w in workers
        if isinstance(w, dict) and w.get("pattern")
    ]
    return 1 + max(nested, default=0)


def team_levels(pattern: Any, data: Any) -> int:
    """A team's levels; a pattern that cannot be a team counts as one, for validation
    to name."""
    if not isinstance(pattern, str) or pattern not in PATTERNS:
        return 1
    role = PATTERNS.get(pattern).team
    return role.levels(data) if role is not None else 1


def supervisor_agents(values: dict[str, Any]) -> int:
    """The agents a supervisor run puts to work at every depth: each role or registered
    worker, and each team's own; not the supervisor's planner, conflict checks and
    synthesizer, which coordinate rather than work."""
    return sum(
        team_role(w["pattern"]).agents(w["input"]) if w.get("kind") == "team" else 1
        for w in values["workers"]
    )


class SupervisorOptions(BaseModel):
    """How the graph is built: per-attempt timeouts and retry policy (kept for resume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    worker_timeout_s: float = Field(default=300.0, gt=0, le=3_600)
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)
    agent_timeout_s: float = Field(default=600.0, gt=0, le=3_600)
    team_timeout_s: float = Field(default=3_600.0, gt=0, le=86_400)
