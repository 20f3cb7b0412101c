"""Reading Block Kit as Slack does when a user acts: finding an element by action_id, and the
``state.values`` a modal submission carries."""

from __future__ import annotations

import copy
from typing import Any, cast

from sandbox.slack.rules import JSON


def find_element(blocks: list[JSON], action_id: str) -> tuple[str | None, JSON | None]:
    """The block_id and element carrying ``action_id`` in actions, section accessories or inputs."""
    for block in blocks:
        elements = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None


def option(element: JSON, value: Any) -> JSON:
    for option in element.get("options") or []:
        if option.get("value") == value:
            return copy.deepcopy(cast(JSON, option))
    return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}


SINGLE_SELECTIONS = {
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}


def element_state(element: JSON, value: Any) -> JSON:
    """One element's entry in state.values, shaped as Slack sends it for that element type."""
    kind = str(element.get("type", "plain_text_input"))
    if isinstance(value, dict) and "type" in value:
        return copy.deepcopy(value)
    if kind in {"static_select", "external_select", "radio_buttons"}:
        return {"type": kind, "selected_option": option(element, value) if value is not None else None}
    if kind in {"multi_static_select", "multi_external_select", "checkboxes"}:
        chosen = value if isinstance(value, list) else ([] if value is None else [value])
        return {"type": kind, "selected_options": [option(element, v) for v in chosen]}
    if kind in SINGLE_SELECTIONS:
        return {"type": kind, SINGLE_SELECTIONS[kind]: value}
    return {"type": kind, "value": None if value is None else str(value)}


def state_values(view: JSON, values: dict[str, Any]) -> JSON:
    """Build ``view.state.values`` for every input block: the given values, None where left empty."""
    inputs: dict[str, tuple[str, JSON]] = {}  # block_id -> (action_id, element)
    for block in view.get("blocks", []):
        element = block.get("element")
        if block.get("type") == "input" and isinstance(element, dict):
            inputs[block["block_id"]] = (element["action_id"], element)
    state: JSON = {bid: {aid: element_state(el, None)} for bid, (aid, el) in inputs.items()}
    by_action = {aid: bid for bid, (aid, _) in inputs.items()}
    for key, value in values.items():
        if key in inputs and isinstance(value, dict) and "type" not in value:
            for action_id, inner in value.items():
                state[key][action_id] = element_state(inputs[key][1], inner)
        elif key in inputs:
            action_id, element = inputs[key]
            state[key][action_id] = element_state(element, value)
        elif key in by_action:
            block_id = by_action[key]
            state[block_id][key] = element_state(inputs[block_id][1], value)
        else:
            raise KeyError(f"no input block or action {key!r} in view {view.get('id')}")
    return state
