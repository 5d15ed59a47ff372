"""Every patch of Rasa's internals the bot's server makes, in one place (chatbot/rasa_server.py
calls apply()). Each is guarded (lakewatch/patches.py): PATCHES records the source hash of what
it relies on and a behaviour check, and tests/unit/test_patch_guards.py runs them in the rasa
venv, so a Rasa upgrade that changes a target fails with a sentence naming the patch.

Runs in the rasa venv (Python 3.10), imported as `chatbot.rasa_patches` from the repo root.
"""
from __future__ import annotations

from lakewatch.patches import Patch


def validate_action_results_with_one_validator() -> None:
    """Rasa checks every action server answer with jsonschema.validate(), which first checks
    the schema itself against the metaschema: 60 ms of every answer that runs an action (most
    of an answer's time, measured; docs/benchmarks.md). A validator built once checks the same
    schema in under a millisecond; an invalid answer still goes to Rasa's own check, for its
    error message.

    Relies on: RemoteAction._validate_action_result(self, result) returning True for a valid
    answer and raising for an invalid one, by jsonschema against the fixed schema that the static
    RemoteAction.action_response_format_spec() returns (so one validator serves every call)."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)
    rasas_check = RemoteAction._validate_action_result

    def validate(self, result) -> bool:
        return validator.is_valid(result) or rasas_check(self, result)

    RemoteAction._validate_action_result = validate


def _check_validation() -> None:
    """Patched, valid answers pass and invalid ones raise Rasa's own ValidationError, as before."""
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    valid = [{}, {"events": [], "responses": []},
             {"events": [{"event": "slot", "name": "symbol", "value": "AAPL"}], "responses": [{"text": "hi"}]}]
    invalid = [{"events": "not a list"}, {"responses": [1]}, {"events": [{"event": "no such event"}]}]

    def outcomes(action):
        found = []
        for answer in valid + invalid:
            try:
                found.append(action._validate_action_result(answer))
            except ValidationError as exc:
                found.append(("ValidationError", exc.message))
        return found

    action = RemoteAction.__new__(RemoteAction)  # the check reads no instance state
    original = outcomes(action)
    validate_action_results_with_one_validator()
    patched = outcomes(action)
    assert patched == original, f"patched {patched} != original {original}"
    assert original[:len(valid)] == [True] * len(valid), original


UNDERSTOOD_KEPT = 2048  # texts; a parse is a few hundred bytes
_UNDERSTOOD_KEYS = {"text", "text_tokens", "intent", "entities", "intent_ranking", "response_selector"}


def keep_what_was_understood() -> None:
    """What the model makes of a text depends on the text alone (the pipeline is NLU only: no
    component reads the conversation), and about half of Rasa's time per message went to the
    graph runner's parse (profiled under 20 users; docs/benchmarks.md, issue 23). So the last
    UNDERSTOOD_KEPT texts' parses are kept per loaded model, and a text asked again (the same
    question from several analysts, a chat page's suggestion) skips the graph. A parse carrying
    anything else (a message id, metadata) is not kept.

    Relies on: MessageProcessor._parse_message_with_graph(self, message, tracker,
    only_output_properties) returning a fresh dict built from the graph's output for
    message.text, and self.model_filename naming the loaded model."""
    import copy
    from collections import OrderedDict

    from rasa.core.processor import MessageProcessor

    parse = MessageProcessor._parse_message_with_graph
    kept: OrderedDict = OrderedDict()

    def understood(self, message, tracker, only_output_properties=True):
        key = (self.model_filename, message.text, only_output_properties)
        if key in kept:
            kept.move_to_end(key)
            return copy.deepcopy(kept[key])
        parsed = parse(self, message, tracker, only_output_properties)
        if set(parsed) <= _UNDERSTOOD_KEYS:
            kept[key] = copy.deepcopy(parsed)
            while len(kept) > UNDERSTOOD_KEPT:
                kept.popitem(last=False)
        return parsed

    MessageProcessor._parse_message_with_graph = understood


def _check_understanding() -> None:
    """Patched, a text parses to what the graph gives, the second time from the kept copy, and
    a caller changing its parse does not change the next one."""
    from types import SimpleNamespace

    from rasa.core.processor import MessageProcessor

    calls = []

    def graph(self, message, tracker, only_output_properties=True):
        calls.append(message.text)
        return {"text": message.text, "intent": {"name": "greet", "confidence": 0.9}, "entities": []}

    MessageProcessor._parse_message_with_graph = graph
    keep_what_was_understood()
    processor = SimpleNamespace(model_filename="m.tar.gz")
    hello = SimpleNamespace(text="hello")
    first = MessageProcessor._parse_message_with_graph(processor, hello, None)
    first["entities"].append({"entity": "changed"})
    second = MessageProcessor._parse_message_with_graph(processor, hello, None)
    assert calls == ["hello"], calls
    assert second == {"text": "hello", "intent": {"name": "greet", "confidence": 0.9}, "entities": []}, second
    MessageProcessor._parse_message_with_graph(processor, SimpleNamespace(text="hi"), None)
    assert calls == ["hello", "hi"], calls


PATCHES = (
    Patch("validate_action_results_with_one_validator",
          {"rasa.core.actions.action:RemoteAction._validate_action_result":
               "f8cdb4be6812396167ced74161b2ccd65c5ea676ad86d7d359d8c322d9d8dc42",
           "rasa.core.actions.action:RemoteAction.action_response_format_spec":
               "091b74aa3738d1262cf3c028386aaf9dd4f0d5c1374b62392411d70a79104a46"},  # Rasa 3.6.21
          _check_validation),
    Patch("keep_what_was_understood",
          {"rasa.core.processor:MessageProcessor._parse_message_with_graph":
               "0bd50a53b5c013af8458cbefe5dbcbd5c02c82a671a841b1947b3e8964e5c3d1"},  # Rasa 3.6.21
          _check_understanding),
)


def apply() -> None:
    """Every patch above, in the running Rasa server."""
    validate_action_results_with_one_validator()
    keep_what_was_understood()
