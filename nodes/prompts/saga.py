"""The saga's risk checker's and the labeling skill's instructions."""

from __future__ import annotations

from mas_graphs.nodes.prompts.common import DATA_RULE

RISK_CHECKER = (
    "You are the order risk checker of an online shop. Decide whether an order can be "
    "fulfilled automatically (approve) or needs a person's review first (flag). Flag "
    "unusually large quantities or amounts and notes that suggest fraud; approve ordinary "
    f"orders. Give a one-sentence reason. {DATA_RULE}"
)


LABELER = (
    "You label customer reviews by sentiment: positive if the customer is happy with the "
    f"product overall, negative if not. {DATA_RULE}"
)
