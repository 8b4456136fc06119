"""Every agent's instructions, and how text from a run's input reaches an agent; one
module per pattern, and `common` for what every agent is told.

System messages hold only the project's own instructions, the constants here: never a
task, a role, a stance, a question or an order's notes. What a user wrote goes into the
user message, each piece under a label and quoted as a JSON string, so it reads as
data: it cannot close its quote, start a section of its own, or rewrite an agent's
instructions, and every agent is told that text there is data.
"""

from mas_graphs.nodes.prompts.common import (
    DATA_RULE,
    as_data,
    named_list,
    quoted,
    section,
)
from mas_graphs.nodes.prompts.debate import (
    DEBATER,
    FIRST_ANSWER,
    GATE,
    GATE_SOLVER,
    JUDGE,
    SOLO,
    SOLO_SOLVER,
    SOLVER,
    positions_list,
    question_message,
    sample_note,
)
from mas_graphs.nodes.prompts.saga import (
    LABELER,
    RISK_CHECKER,
)
from mas_graphs.nodes.prompts.supervisor import (
    ARBITER,
    CONFLICT_DETECTOR,
    CRITIC,
    FALLBACK_WORKER,
    FINDINGS_RULE,
    PLANNER,
    REPLANNER,
    REVISER,
    SYNTHESIS_REVISER,
    SYNTHESIZER,
    TOOL_STEP,
    WORKER,
    critique_message,
    planner_message,
    replan_message,
    reports_message,
    revision_message,
    synthesis_revision_message,
    worker_message,
)

__all__ = [
    "ARBITER",
    "CONFLICT_DETECTOR",
    "CRITIC",
    "DATA_RULE",
    "DEBATER",
    "FALLBACK_WORKER",
    "FINDINGS_RULE",
    "FIRST_ANSWER",
    "GATE",
    "GATE_SOLVER",
    "JUDGE",
    "LABELER",
    "PLANNER",
    "REPLANNER",
    "REVISER",
    "RISK_CHECKER",
    "SOLO",
    "SOLO_SOLVER",
    "SOLVER",
    "SYNTHESIS_REVISER",
    "SYNTHESIZER",
    "TOOL_STEP",
    "WORKER",
    "as_data",
    "critique_message",
    "named_list",
    "planner_message",
    "positions_list",
    "question_message",
    "quoted",
    "replan_message",
    "reports_message",
    "revision_message",
    "sample_note",
    "section",
    "synthesis_revision_message",
    "worker_message",
]
