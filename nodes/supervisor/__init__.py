"""Supervisor nodes, by concern: `opening` (the input), `planning` (the plan, a
person's review of it, replanning), `workers` (the batches' workers, fallbacks and the
barrier), `review` (a critic's rounds on a report), `synthesis` (conflicts, the
synthesis, and a person's review of it).

Every node is a small function of its input that returns a partial state update or
a `Command` saying where the run goes next; retries, timeouts and fallbacks are
configured on the graph's nodes (see graphs/supervisor.py), and every loop (a
critic's rounds, replanning, a person's re-runs) is a path through the graph, one
checkpointed superstep per turn, not a loop hidden in a node.
"""

from mas_graphs.nodes.supervisor.opening import (
    after_opening,
    check_team,
    check_workers,
    open_supervisor,
)
from mas_graphs.nodes.supervisor.planning import (
    Batches,
    PlanError,
    after_planning,
    after_review,
    plan_batches,
    plan_review_answer,
    plan_work,
    replan_work,
    review_plan,
)
from mas_graphs.nodes.supervisor.review import (
    critique_report,
    review_failed,
    revise_report_node,
)
from mas_graphs.nodes.supervisor.synthesis import (
    after_synthesis,
    critique_synthesis,
    detect_conflicts,
    distinct_conflicts,
    draft_of,
    escalation_reason,
    reports_of,
    resolve_conflict,
    review_or_end,
    review_synthesis,
    revise_synthesis,
    route_conflicts,
    settle_by_confidence,
    structured_result,
    synthesis_review_answer,
    synthesize,
)
from mas_graphs.nodes.supervisor.workers import (
    batch_done,
    collect_batch,
    described,
    dispatch_batch,
    failed_in,
    failed_result,
    fallback_failed,
    finished_reports,
    replans_left,
    reported,
    run_fallback,
    run_worker,
    wants_replan,
    with_roles,
    worker_failed,
    worker_result,
)

__all__ = [
    "Batches",
    "PlanError",
    "after_opening",
    "after_planning",
    "after_review",
    "after_synthesis",
    "batch_done",
    "check_team",
    "check_workers",
    "collect_batch",
    "critique_report",
    "critique_synthesis",
    "described",
    "detect_conflicts",
    "dispatch_batch",
    "distinct_conflicts",
    "draft_of",
    "escalation_reason",
    "failed_in",
    "failed_result",
    "fallback_failed",
    "finished_reports",
    "open_supervisor",
    "plan_batches",
    "plan_review_answer",
    "plan_work",
    "replan_work",
    "replans_left",
    "reported",
    "reports_of",
    "resolve_conflict",
    "review_failed",
    "review_or_end",
    "review_plan",
    "review_synthesis",
    "revise_report_node",
    "revise_synthesis",
    "route_conflicts",
    "run_fallback",
    "run_worker",
    "settle_by_confidence",
    "structured_result",
    "synthesis_review_answer",
    "synthesize",
    "wants_replan",
    "with_roles",
    "worker_failed",
    "worker_result",
]
