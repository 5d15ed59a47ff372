"""Superset's saved queries, generated from the builders the bot asks with (lakewatch.sql.queries).

Each common question is one builder call over the periods of lakewatch.sql.periods. Rendered
with its periods on the session's clock (`current_date`, `current_timestamp`) and its values
as literals, it is SQL text that both engines run and that stays right every day, laid out one
clause per line for SQL Lab's readers. superset/assets/queries/lake/*.yaml and the examples of
docs/sql.md are this module's output, never edited by hand:

    python -m lakewatch.sql.saved_queries            # lists what is out of date
    python -m lakewatch.sql.saved_queries --write    # regenerates it

tests/unit/test_saved_queries.py fails when the files differ from the output, and runs every
question both ways (this SQL, and the bot's bound datetimes at the same instant) on one lake.
"""
from __future__ import annotations

import argparse
import re
import sys
from datetime import date, datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from lakewatch.settings import REPO_ROOT
from lakewatch.sql import periods, queries, schema, views
from lakewatch.sql.periods import Period, SqlClock

QUERY_DIR = REPO_ROOT / "superset" / "assets" / "queries" / "lake"
DOCS = REPO_ROOT / "docs" / "sql.md"
DOCS_SECTION = "## Example queries for SQL Lab"
LAKE_DATABASE_UUID = "0aa17c61-6117-53be-b12b-9b0d8cdead83"  # superset/assets/databases/lake.yaml
SESSION_DAY = "in the session's time zone (LAKEWATCH_DAY_TIMEZONE)"

When = Callable[[Period], queries.AnyWindow]


@dataclass(frozen=True)
class Question:
    label: str
    uuid: str  # Superset imports saved queries by UUID: a new one would make a second copy
    description: str
    build: Callable[[When], sa.Select]  # given how to turn a period into a window
    comment: str = ""

    @property
    def name(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")


QUESTIONS = (
    Question("How many anomalies in crypto today?", "213d9ca9-156b-5b8e-be7d-0d5201cb1096",
             "Anomalies (episodes) that began in crypto today, and the bars the model flagged.",
             lambda when: queries.anomaly_count(when(periods.TODAY), asset_class="crypto"),
             f"today: from 00:00 {SESSION_DAY} until midnight"),
    Question("Which stock was most anomalous this week?", "ca357937-b39a-53f8-8b6d-e1b00a03a52d",
             "Stocks by anomalies (episodes) begun since Monday, with their flagged bars and highest score.",
             lambda when: queries.top_anomalous_symbols(when(periods.THIS_WEEK), 5, asset_class="stocks"),
             f"this week: from Monday 00:00 {SESSION_DAY} until now"),
    Question("Latest price and 24h change of AAPL", "a01b1026-5eb9-5e5a-b061-4af41edbb315",
             "AAPL's row of the latest_prices view.",
             lambda when: queries.latest_price("AAPL", queries.stored_view("latest_prices"))),
    Question("What happened with BTC in the last hour, minute by minute", "ffbdc182-e1ad-59bf-a480-8155f6208d07",
             "BINANCE:BTCUSDT's 1-minute bars of the last hour.",
             lambda when: queries.minute_bars("BINANCE:BTCUSDT", when(periods.the_last(1, "hour")))),
    Question("Latest anomalies with their features", "e1ca1a08-9a01-5549-a02b-5d00df9968d7",
             "The 20 most recent flagged bars of every symbol.",
             lambda when: queries.latest_anomalies(20)),
    Question("Recent news on TSLA", "c2b5f380-381f-53ec-bc53-caf0ae5f23a7",
             "TSLA's 10 newest headlines.",
             lambda when: queries.recent_news("TSLA", 10)),
    Question("Daily OHLCV per symbol for yesterday, from the trades", "898ca9ea-291e-5a8a-9c80-ee462df4fb81",
             "Yesterday's trades as one daily bar per symbol.",
             lambda when: queries.day_bars(when(periods.YESTERDAY).first_day),
             f"yesterday: the day before today {SESSION_DAY}"),
    Question("Rejects today, by reason", "13ff1136-cdf2-5200-86ec-8687ddf9fe66",
             "Records the stream rejected today, by reason.",
             lambda when: queries.rejects_by_reason(when(periods.TODAY)),
             f"today: from 00:00 {SESSION_DAY} until midnight"),
    Question("Fundamentals per symbol", "fdfa4fd2-50a7-54c4-af50-af716f368172",
             "The main figures of the fundamentals_latest view.",
             lambda when: queries.fundamentals()),
)


def saved_select(question: Question, clock: SqlClock = periods.SESSION_CLOCK) -> sa.Select:
    return question.build(lambda period: period.in_sql(clock))


def compile_text(query: sa.Select, dialect_name: str) -> str:
    """The query as one SQL text, values as literals and columns unqualified (each saved query
    reads one table or view)."""
    return _readable(str(query.compile(dialect=views.dialect(dialect_name), compile_kwargs={"literal_binds": True})))


def filled_in(query: sa.Select, dialect_name: str) -> str:
    """A query the bot ran, with its bound values written in as typed literals (DATE '...',
    TIMESTAMP '... UTC'), so it can be pasted into SQL Lab on that engine and gives the same rows."""
    dialect = views.dialect(dialect_name)
    dialect.paramstyle, dialect.positional = "named", False
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return _readable(re.sub(r":(\w+)\b", lambda m: _literal(compiled.params[m.group(1)], dialect_name), str(compiled)))


def _readable(compiled: str) -> str:
    """Compiled SQL with columns unqualified (each query reads one table or view), laid out."""
    return _layout(re.sub(rf"\b{schema.SCHEMA}\.\w+\.(?=\w)", "", compiled))


def _literal(value, dialect_name: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        utc = value.astimezone(timezone.utc)
        return (f"TIMESTAMP '{utc:%Y-%m-%d %H:%M:%S.%f} UTC'" if dialect_name == "trino"
                else f"TIMESTAMPTZ '{utc:%Y-%m-%d %H:%M:%S.%f}+00'")
    if isinstance(value, date):
        return f"DATE '{value:%Y-%m-%d}'"
    return "'" + str(value).replace("'", "''") + "'"


def sql_text(question: Question) -> str:
    """What SQL Lab shows: the comment, then the query."""
    comment = f"-- {question.comment}\n" if question.comment else ""
    return comment + compile_text(saved_select(question), "duckdb")


_CLAUSES = ("FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT")
_WIDTH = 100


def _split(sql: str, separator: str) -> list[str]:
    """`sql` cut after the first character of each `separator` outside parentheses and quotes."""
    cuts, depth, quoted = [0], 0, False
    for i, ch in enumerate(sql):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
        elif not quoted and depth == 0 and sql.startswith(separator, i):
            cuts.append(i + 1)
    return [sql[a:b].strip() for a, b in zip(cuts, [*cuts[1:], len(sql)])]


def _wrap(line: str) -> str:
    """A long clause broken after its commas into lines of at most _WIDTH characters."""
    indent = " " * (line.index(" ") + 1)
    lines = []
    for item in _split(line, ", "):
        if lines and len(lines[-1]) + 1 + len(item) <= _WIDTH:
            lines[-1] += " " + item
        else:
            lines.append((indent if lines else "") + item)
    return "\n".join(lines)


def _layout(sql: str) -> str:
    """One clause per line, each WHERE condition on its own line, long lists wrapped."""
    lines = [re.sub(r"\s*\n\s*", " ", sql)]  # SQLAlchemy's own line breaks; no literal here holds one
    for clause in _CLAUSES:
        lines = [part for line in lines for part in _split(line, f" {clause} ")]
    return "\n".join("\n  ".join(_split(line, " AND ")) if line.startswith("WHERE ")
                     else _wrap(line) if len(line) > _WIDTH else line for line in lines)


def yaml_text(question: Question) -> str:
    sql = "\n".join("  " + line for line in sql_text(question).split("\n"))
    return (f"# Generated by `python -m lakewatch.sql.saved_queries --write` from the question there.\n"
            f"schema: market\nlabel: {question.label}\n"
            f"description: {question.description}\nsql: |\n{sql}\n"
            f"uuid: {question.uuid}\nversion: 1.0.0\ndatabase_uuid: {LAKE_DATABASE_UUID}\n")


def docs_text(current: str) -> str:
    """docs/sql.md with its SQL Lab examples replaced by the questions."""
    head, section = current.split(DOCS_SECTION, 1)
    before, rest = section.split("```sql\n", 1)
    after = rest.split("```", 1)[1]
    examples = "\n\n".join(f"-- {q.label}\n{sql_text(q)};" for q in QUESTIONS)
    return f"{head}{DOCS_SECTION}{before}```sql\n{examples}\n```{after}"


def outputs() -> dict[Path, str]:
    """Every generated file and its text."""
    files = {QUERY_DIR / f"{q.name}.yaml": yaml_text(q) for q in QUESTIONS}
    files[DOCS] = docs_text(DOCS.read_text())
    return files


def out_of_date() -> list[Path]:
    """Generated files whose text differs, and saved queries no question produces any more."""
    files = outputs()
    differ = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    return differ + sorted(set(QUERY_DIR.glob("*.yaml")) - set(files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the files that are out of date")
    args = parser.parse_args(argv)
    files, stale = outputs(), out_of_date()
    for path in stale:
        if not args.write:
            print(f"out of date: {path.relative_to(REPO_ROOT)}")
        elif path in files:
            path.write_text(files[path])
            print(f"wrote {path.relative_to(REPO_ROOT)}")
        else:
            path.unlink()
            print(f"removed {path.relative_to(REPO_ROOT)}: no question makes it any more")
    return 1 if stale and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
