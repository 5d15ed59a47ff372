"""Scores the trained bot's understanding on phrasings it never saw: intent accuracy and entity
exact-match over the held-out sets chatbot/tests/nlu_*.yml, and what it made of each phrasing.

An entity matches exactly when the bot found the same kind at the same characters and, where the
held-out file names the value meant (`[crytpo]{"entity": "asset_class", "value": "crypto"}`),
read it as that value. A phrasing's entities match when every one does and nothing else was
found. Runs in the rasa venv, from the repo root (tests/integration/test_chatbot.py does):

    var/venvs/rasa/bin/python -m chatbot.evaluate MODEL.tar.gz scores.json [HELDOUT.yml ...]

(A file, not stdout: Rasa logs its parses to stdout.)
"""
from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

CHATBOT = Path(__file__).resolve().parent
HELDOUT, TRAINING = sorted((CHATBOT / "tests").glob("nlu_*.yml")), CHATBOT / "data" / "nlu"
ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")  # [text](kind) or [text]{"entity": ...}


def phrasings(path: Path) -> list[tuple[str, str]]:
    """(intent, text as a user types it) of every example of a Rasa NLU file, annotations taken out."""
    import yaml

    return [(item["intent"], ANNOTATION.sub(r"\1", line.strip().removeprefix("- ")))
            for item in yaml.safe_load(path.read_text())["nlu"] if "intent" in item
            for line in item["examples"].splitlines() if line.strip()]


def entities_match(expected: list[dict], found: list[dict], text: str, synonyms: dict[str, str]) -> bool:
    """Same kinds at the same characters; where the annotation names the value meant, the value
    found is it (both as the synonym tables map them: "bitcoin" is BINANCE:BTCUSDT)."""
    def meaning(value) -> str:
        return synonyms.get(str(value).lower(), str(value)).lower()

    wanted = {(e["entity"], e["start"], e["end"],
               meaning(e["value"]) if str(e["value"]).lower() != text[e["start"]:e["end"]].lower() else None)
              for e in expected}
    named = {(kind, start, end) for kind, start, end, value in wanted if value is not None}
    got = {(e["entity"], e["start"], e["end"], meaning(e["value"]) if (e["entity"], e["start"], e["end"]) in named
            else None) for e in found}
    return wanted == got


async def score(model: str, heldout: list[Path]) -> dict:
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data

    agent = Agent.load(model)
    synonyms = {k.lower(): v for k, v in load_data(str(TRAINING)).entity_synonyms.items()}
    results = []
    for path in heldout:
        for example in load_data(str(path)).intent_examples:
            text = example.get("text")
            parsed = await agent.parse_message(text)
            expected = example.get("entities") or []
            results.append({"set": path.name, "text": text, "intent": example.get("intent"),
                            "predicted": parsed["intent"]["name"],
                            "expected_entities": [{k: e[k] for k in ("entity", "start", "end", "value")}
                                                  for e in expected],
                            "entities": parsed["entities"],
                            "entities_match": entities_match(expected, parsed["entities"], text, synonyms)})
    return {**_scores(results), "sets": {p.name: _scores([r for r in results if r["set"] == p.name]) for p in heldout},
            "results": results}


def _scores(results: list[dict]) -> dict:
    n = len(results)
    return {"examples": n, "intent_accuracy": sum(r["intent"] == r["predicted"] for r in results) / n,
            "entity_exact_match": sum(r["entities_match"] for r in results) / n}


def main(argv: list[str]) -> int:
    model, out, heldout = argv[0], Path(argv[1]), [Path(a) for a in argv[2:]] or HELDOUT
    out.write_text(json.dumps(asyncio.run(score(model, heldout)), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
