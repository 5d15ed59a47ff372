"""`lakewatch` command line: the Makefile's targets call these subcommands.

    lakewatch up | down | stop SERVICE... | status | logs [-n N] [--no-follow] | backfill --days N | topics
    lakewatch sql "SELECT ..." [--format table|csv|json]
    lakewatch analyst NAME [--email E]
    lakewatch retrain
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from lakewatch import settings as settings_module
from stack import runner as stack
from stack.services import NAME_WIDTH


def _print_status(s) -> bool:
    """One line per service and one for the supervisor: state (running, stopped, restarting,
    crash-loop), pid, restarts by the supervisor, health, URL."""
    rows = stack.status(s)
    width = NAME_WIDTH
    print(f"{'service':<{width}} {'state':<10} {'pid':>7} {'restarts':>8}  {'health':<9} url")
    for r in rows:
        restarts = "-" if r["restarts"] is None else r["restarts"]
        print(f"{r['service']:<{width}} {r['state']:<10} {r['pid'] or '-':>7} {restarts:>8}  {r['health']:<9} {r['url']}")
    return all(r["health"] == "ok" for r in rows)


def cmd_up(s, args) -> int:
    if s.profile != "embedded":  # before anything starts: the one default password is the embedded profile's
        from stack.services.superset import secrets

        secrets(s)
    source = "Finnhub (FINNHUB_API_KEY is set)" if s.uses_finnhub else "the market simulator (no FINNHUB_API_KEY)"
    print(f"lakewatch: starting the {s.profile} stack, state in {s.state_dir}, data from {source}")
    stack.up(s)
    password = "SUPERSET_ADMIN_PASSWORD" if s.superset_admin_password else "admin"
    print(f"Dashboards: {s.url(s.superset_port, '/superset/dashboard/market-overview/')} "
          f"(user {s.superset_admin_user}, password {password}); "
          f"SQL Lab: {s.url(s.superset_port, '/sqllab/')}")
    print(f"Chat with the bot: {s.url(s.chat_port, '/')}")
    print(f"Monitoring: {s.url(s.prometheus_port, '/consoles/lakewatch.html')} (alerts: "
          f"{s.url(s.prometheus_port, '/alerts')})")
    make = "make cluster-" if s.profile == "cluster" else "make "  # the cluster's targets (Makefile)
    print(f"lakewatch is up; the supervisor restarts a service that exits. `{make}status` shows health and restarts, "
          f"`{make}logs` tails {s.log_dir}, `{make}down` stops it.")
    return 0


def cmd_down(s, args) -> int:
    stopped = stack.down(s)
    if s.profile == "cluster":
        from stack.cluster import network

        network.down(s)
    print("lakewatch: stopped." if stopped else "lakewatch: nothing was running.")
    return 0


def cmd_stop(s, args) -> int:
    known = {service.name for service in stack.services(s)} | {stack.SUPERVISOR}
    unknown = [name for name in args.services if name not in known]
    if unknown:
        raise stack.StackError(f"no such service: {', '.join(unknown)} (the services are {', '.join(sorted(known))})")
    for name in args.services:
        if not stack.stop(s, name):
            print(f"  {name:<{NAME_WIDTH}} was not running")
    return 0


def cmd_analyst(s, args) -> int:
    """A Superset user on the Analyst role (superset/provision.py): dashboards and SQL Lab on
    the lake, no admin rights. Superset's own `fab create-user` asks for the password."""
    import subprocess

    from stack.services import superset, venv_python

    command = [str(venv_python(s, "superset").parent / "superset"), "fab", "create-user", "--role", "Analyst",
               "--username", args.name, "--firstname", args.name, "--lastname", "analyst",
               "--email", args.email or f"{args.name}@lakewatch.invalid"]
    return subprocess.run(command, env=superset.environment(s)).returncode


def cmd_status(s, args) -> int:
    return 0 if _print_status(s) else 1


def cmd_logs(s, args) -> int:
    files = [str(p) for p in stack.log_files(s)]
    if not files:
        print(f"lakewatch: no logs yet in {s.log_dir}; run `make up` first.")
        return 1
    command = ["tail", "-n", str(args.lines)] + ([] if args.no_follow else ["-F"]) + files
    os.execvp("tail", command)


def cmd_backfill(s, args) -> int:
    from ingestion.producer import RecordProducer
    from ingestion.sim_feed import backfill
    from ingestion.topics import ensure_topics

    ensure_topics(s)
    producer = RecordProducer(s.bootstrap_servers, client_id="lakewatch-backfill")
    print(f"lakewatch: backfilling {args.days:g} days at the live rate, {s.sim_rate:g} trades/s (LAKEWATCH_SIM_RATE)")
    totals = backfill(s, producer.publish, days=args.days, poll=producer.poll)
    left = producer.close(timeout=120)
    print(f"lakewatch: backfilled {args.days:g} days: {totals['trades']} trades, {totals['labels']} labelled anomalies, "
          f"{totals['news']} news, {totals['quotes']} quotes in {totals['seconds']} s"
          + (f"; {left} records NOT acknowledged" if left else ""))
    return 1 if left else 0


def cmd_topics(s, args) -> int:
    from ingestion.topics import ensure_topics

    for name, partitions in sorted(ensure_topics(s).items()):
        print(f"{name:<22} {partitions} partition(s)")
    return 0


def cmd_kafka(s, args) -> int:
    from stack.services.broker import tool_command

    command = tool_command(s, args.tool, args.args)
    os.execvp(command[0], command)


def cmd_retrain(s, args) -> int:
    """Trigger Airflow's lakewatch_retrain now, as its UI's trigger button does."""
    from stack.services import airflow, venv_python

    if not airflow.healthy(s):
        raise stack.StackError(f"Airflow does not answer at {s.url(s.airflow_port)}: start it with `make up`")
    command = [str(venv_python(s, "airflow").parent / "airflow"), "dags", "trigger", "lakewatch_retrain"]
    done = subprocess.run(command, env={**os.environ, **airflow.environment(s)}, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip() or "no error output").splitlines()[-1]
        print(f"lakewatch: airflow dags trigger failed (exit code {done.returncode}): {last}", file=sys.stderr)
        return done.returncode
    print(f"lakewatch: lakewatch_retrain triggered; follow it at {s.url(s.airflow_port, '/dags/lakewatch_retrain')}")
    return 0


def cmd_sql(s, args) -> int:
    import csv
    import time

    import sqlalchemy as sa
    from tabulate import tabulate

    from lakewatch.sql import sql_engine
    from stack import sandbox

    if s.sql_engine == "duckdb" and not sandbox.inside():  # run again where the lake is read-only
        again = [sys.executable, "-m", "stack.cli", "sql", args.query, "--format", args.format]
        command = sandbox.read_only_lake(s.lake_dir, again)
        os.execvp(command[0], command)
    started = time.perf_counter()
    try:
        with sql_engine(s).connect() as connection:
            # exec_driver_sql: the text goes to the engine as typed (':' in 'BINANCE:BTCUSDT' is no parameter)
            result = connection.exec_driver_sql(args.query)
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(row) for row in result] if result.returns_rows else []
    except sa.exc.DBAPIError as exc:
        print(f"lakewatch sql: {str(exc.orig).strip()}", file=sys.stderr)
        return 1
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif args.format == "json":
        print(json.dumps([dict(zip(columns, row)) for row in rows], default=str, indent=1))
    else:
        print(tabulate(rows, headers=columns, tablefmt="psql", floatfmt=".10g", missingval="NULL"))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''}, {time.perf_counter() - started:.2f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakewatch", description="Run and inspect the lakewatch stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every service not running yet and print the URLs")
    sub.add_parser("down", help="stop every service this stack started")
    stop_parser = sub.add_parser("stop", help="stop only the services named, which the supervisor then leaves "
                                              "stopped (`up` starts them again)")
    stop_parser.add_argument("services", nargs="+")
    sub.add_parser("status", help="show every service, its restarts and health (exit 1 if any is unhealthy)")
    logs_parser = sub.add_parser("logs", help="tail the service logs")
    logs_parser.add_argument("-n", "--lines", type=int, default=20)
    logs_parser.add_argument("--no-follow", action="store_true")
    backfill_parser = sub.add_parser("backfill", help="simulate N days of history into the broker")
    backfill_parser.add_argument("--days", type=float, default=1.0)
    sub.add_parser("topics", help="create the topics if missing and list them")
    analyst_parser = sub.add_parser("analyst", help="add a Superset user with the Analyst role (asks for a password)")
    analyst_parser.add_argument("name")
    analyst_parser.add_argument("--email")
    kafka_parser = sub.add_parser("kafka", help="run one of Kafka's tools against the broker, e.g. "
                                                "kafka console-consumer --topic market.trades --from-beginning")
    kafka_parser.add_argument("tool")
    kafka_parser.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("retrain", help="trigger Airflow's lakewatch_retrain DAG now")
    sql_parser = sub.add_parser("sql", help="run a SQL query on the lake (schema market) and print the result")
    sql_parser.add_argument("query")
    sql_parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    args = parser.parse_args(argv)

    try:
        s = settings_module.load()
        handler = globals()[f"cmd_{args.command}"]
        return handler(s, args)
    except (stack.StackError, ValueError, FileNotFoundError) as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
