"""The webhook template and `{{variable}}` substitution.

A webhook rule's template is the JSON message the trader pastes into TradingView (or any sender). Wherever
the template holds a string that is exactly one placeholder, `"{{name}}"`, the value the sender puts at
that place in its body becomes the variable `name`:

    template  {"ticker": "{{ticker}}", "action": "{{strategy.order.action}}", "qty": "{{strategy.order.contracts}}"}
    body      {"ticker": "BTCUSDT",    "action": "buy",                      "qty": "0.01"}
    variables {"ticker": "BTCUSDT", "strategy.order.action": "buy", "strategy.order.contracts": "0.01"}

Objects nest (the path is followed key by key); other template values (numbers, plain text) are not read.
Actions and notifications then use `{{ticker}}` and friends in their fields. A placeholder whose place is
missing from the body is a malformed delivery, answered with a 400 that names the missing field.
"""

from __future__ import annotations

import re

from core.errors import DomainError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
WHOLE = re.compile(r"^\s*\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}\s*$")
MAX_VALUE_LENGTH = 500


def template_placeholders(template) -> list[tuple[str, str]]:
    """(path, variable) of every placeholder of the template, e.g. ("strategy.action", "strategy.order.action")."""
    found: list[tuple[str, str]] = []

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, str):
            match = WHOLE.match(node)
            if match:
                found.append((path, match.group(1)))

    walk(template, "")
    return found


def template_validate(template) -> dict:
    if not isinstance(template, dict) or not template:
        raise DomainError(
            'The template is a JSON object, e.g. {"ticker": "{{ticker}}", "action": "{{strategy.order.action}}"}.',
            field="webhook_template",
        )
    if not template_placeholders(template):
        raise DomainError(
            'The template needs at least one placeholder such as "{{ticker}}".', field="webhook_template"
        )
    return template


def template_extract(template: dict, body: dict) -> dict[str, str]:
    """The variables a body gives, read at the template's placeholders. DomainError names what is missing."""
    variables: dict[str, str] = {}
    for path, name in template_placeholders(template):
        node = body
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                raise DomainError(f"The body has no field '{path}' (the template expects {{{{{name}}}}} there).")
            node = node[key]
        if isinstance(node, dict | list) or node is None:
            raise DomainError(f"The field '{path}' must be text or a number, not {type(node).__name__}.")
        text = str(node).lower() if isinstance(node, bool) else str(node)
        if len(text) > MAX_VALUE_LENGTH:
            raise DomainError(f"The field '{path}' is longer than {MAX_VALUE_LENGTH} characters.")
        variables[name] = text
    return variables


def has_placeholder(value) -> bool:
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def render(value: str, variables: dict) -> str:
    """`value` with each {{name}} replaced by the variable; DomainError for a name the event does not carry."""

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise DomainError(f"The event has no variable {{{{{name}}}}} (it has: {known}).")
        return str(variables[name])

    return PLACEHOLDER.sub(substitute, value or "")
