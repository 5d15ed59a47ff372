"""What carries over between questions: a follow-up ("and yesterday?", "what about ETH?", "only
stocks") is the previous question with only what the new message names changed; "show me the
SQL" gives back the last answer's queries."""
from __future__ import annotations

# A symbol and an asset class narrow the same thing: naming one replaces the other.
_REPLACES = {"symbol": {"symbol", "asset_class"}, "asset_class": {"symbol", "asset_class"}}


def carried_over(previous: list[dict], new: list[dict]) -> list[dict]:
    """The previous question's entities, with every kind the new message names replaced by it."""
    replaced = set().union(*(_REPLACES.get(e.get("entity"), {e.get("entity")}) for e in new))
    return [e for e in previous if e.get("entity") not in replaced] + list(new)


def remembered(entities: list[dict]) -> list[dict]:
    """Entities as the conversation keeps them: kind and value only (the words the user typed, and
    how they were read, belong to the message they were typed in)."""
    return [{"entity": e.get("entity"), "value": e.get("value")} for e in entities if not e.get("candidates")]


NOTHING_TO_FOLLOW = ("I don't have an earlier question to go on. Ask me a whole question, such as \"how many "
                     "anomalies in crypto today?\", then change a part of it: \"and yesterday?\".")


def sql_answer(last: dict | None) -> str:
    """The last answer's SQL, values filled in, ready to paste into SQL Lab."""
    if not last or not last.get("sql"):
        return "I have not run any SQL in this conversation yet. Ask me a question about the data first."
    engine = "Trino" if last.get("engine") == "trino" else "DuckDB"
    queries = ";\n".join(last["sql"])
    return (f"The SQL behind my last answer (to \"{last.get('question', '')}\"), as {engine} ran it; paste it "
            f"into SQL Lab (database \"lake\"):\n{queries}")
