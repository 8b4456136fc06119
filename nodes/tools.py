"""The tools a worker may be given, by registered name.

Inputs name tools as strings; only names registered here resolve, so no input
can hand an agent a capability the deployment did not grant. Register more with
`register_tool(tool)` in Python or through an entry point of your package:

    [project.entry-points."mas_graphs.tools"]
    my_tool = "my_package.tools:my_tool"    # a LangChain BaseTool
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from langchain_core.tools import BaseTool, tool

from mas_graphs.state.registry import Registry

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
MAX_EXPONENT = 100


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is over the limit of {MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    raise ValueError(f"unsupported expression element: {ast.dump(node)[:60]}")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (+ - * / % ** and parentheses)."""
    try:
        return str(_evaluate(ast.parse(expression, mode="eval")))
    except (SyntaxError, ValueError, ZeroDivisionError) as error:
        return f"error: {error}"


@tool
def word_count(text: str) -> str:
    """Count the words in a text."""
    return str(len(text.split()))


def as_tool(name: str, found: Any) -> BaseTool:
    if not isinstance(found, BaseTool):
        raise TypeError(f"{found!r} is not a LangChain BaseTool")
    return found


TOOLS: Registry[BaseTool] = Registry("tool", "mas_graphs.tools", as_tool)


def register_tool(new_tool: BaseTool, name: str | None = None) -> BaseTool:
    """Allow workers to be given `new_tool` by its name."""
    return TOOLS.register(name or new_tool.name, new_tool)


register_tool(calculator)
register_tool(word_count)
