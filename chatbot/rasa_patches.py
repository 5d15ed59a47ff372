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


PATCHES = (
    Patch("validate_action_results_with_one_validator",
          {"rasa.core.actions.action:RemoteAction._validate_action_result":
               "f8cdb4be6812396167ced74161b2ccd65c5ea676ad86d7d359d8c322d9d8dc42",
           "rasa.core.actions.action:RemoteAction.action_response_format_spec":
               "091b74aa3738d1262cf3c028386aaf9dd4f0d5c1374b62392411d70a79104a46"},  # Rasa 3.6.21
          _check_validation),
)


def apply() -> None:
    """Every patch above, in the running Rasa server."""
    validate_action_results_with_one_validator()
