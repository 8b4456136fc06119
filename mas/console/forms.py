"""An interrupt's answer as an HTML form, built from the answer's JSON schema, and the
submitted form back into the answer (then validated like `mas resume --answer`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mas.errors import InputError


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    widget: str  # checkbox, select, number, text, json
    required: bool
    options: list[str]
    default: str
    help: str


def resolved(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`node` with a `$ref`, or an `anyOf` of a type and null, replaced by what it means."""
    if ref := node.get("$ref"):
        node = {
            **defs.get(str(ref).rsplit("/", 1)[-1], {}),
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    choices = [c for c in node.get("anyOf", []) if c.get("type") != "null"]
    if len(choices) == 1:
        node = {**resolved(choices[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
    return node


def form_fields(schema: dict[str, Any]) -> list[FormField]:
    """One field per property: a checkbox for a boolean, a list for an enum, a number box,
    a text box, and JSON for anything nested (lists, objects)."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    fields = []
    for name, raw in schema.get("properties", {}).items():
        node = resolved(raw, defs)
        kind = node.get("type")
        enum = [str(v) for v in node.get("enum", [])]
        if "const" in node:
            enum = [str(node["const"])]
        widget = (
            "select" if enum
            else "checkbox" if kind == "boolean"
            else "number" if kind in ("integer", "number")
            else "text" if kind == "string"
            else "json"
        )  # fmt: skip
        default = node.get("default")
        shown = (
            "" if default is None else default if isinstance(default, str) else json.dumps(default)
        )
        fields.append(
            FormField(
                name=name,
                label=str(node.get("title") or name.replace("_", " ")),
                widget=widget,
                required=name in required,
                options=enum,
                default=shown,
                help=str(node.get("description", "")),
            )
        )
    return fields


def answer_from_form(schema: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The submitted form as the answer's JSON: each field read by its widget; an empty
    optional field is left out. Types are checked afterwards, by the answer's model."""
    answer: dict[str, Any] = {}
    for spec in form_fields(schema):
        given = form.get(spec.name, "")
        if spec.widget == "checkbox":
            answer[spec.name] = given in ("on", "true", "1")
        elif given == "" and not spec.required:
            continue
        elif spec.widget == "number":
            try:
                answer[spec.name] = float(given) if "." in given else int(given)
            except ValueError:
                raise InputError(f"answer.{spec.name}: {given[:40]!r} is not a number") from None
        elif spec.widget == "json":
            try:
                answer[spec.name] = json.loads(given)
            except json.JSONDecodeError as error:
                raise InputError(f"answer.{spec.name}: not valid JSON ({error.msg})") from None
        else:
            answer[spec.name] = given
    return answer
