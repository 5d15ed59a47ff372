"""The distributed profile for real (`make cluster`'s engines): three Kafka brokers, a Spark
standalone cluster running the stream job and a Trino coordinator with two workers, each node in
a network namespace of its own, while the simulator streams and the scorer writes verdicts. Nodes
are killed and cut off; after each fault, by SQL through the Trino cluster, every offset Kafka
holds is in the lake exactly once and every bar has exactly one verdict in `anomalies`. A Trino
worker dies under a dashboard's queries, and Superset's dashboards then render without a broken
chart in a browser. The metrics the Kafka alerts read are read from the nodes, healthy and with
a broker down.

Two figures per fault (printed, and recorded in docs/benchmarks.md): the time from the fault
until the stream has committed every trade Kafka held at the fault (the same measure taken with
no fault is the reference), and the stream's longest time without a commit in the 30 s after
the fault (the 30 s before it are the reference).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families

from lakewatch import tables
from lakewatch.sql import sql_engine
from model.score import STATE_KEY
from monitoring import prometheus
from stack import prerequisites
from stack import runner as stack
from stack.cluster import network, spark, trino
from testkit import lake
from testkit.known_lake import register_champion
from testkit.processes import private_settings, tree_rss_mb, wait_for
from testkit.superset_client import SupersetAPI, assert_dashboard_renders, browser_page

# Start-up takes 120-290 s (the nodes, the stream job's executors, Superset's provisioning)
# before the first test's own minutes.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TRADES = "market.trades"
# The stack around the engines that these faults need: the simulator's producer, the stream job
# (the Spark driver), the scorer with its model, the table registration and Superset; the bot
# and Prometheus are make up's.
AROUND = ("mlflow", "serving", "stream", "scorer", "ingestion", "trino-sync", "superset")
FIGURES: dict[str, str] = {}
# The Kafka alerts' metrics (monitoring/rules/alerts.yml).
ACTIVE_CONTROLLERS = "kafka_controller_activecontrollercount"
OFFLINE_PARTITIONS = "kafka_controller_offlinepartitionscount"
UNDER_REPLICATED = "kafka_server_replicamanager_underreplicatedpartitions"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if lacking := prerequisites.missing(["root", "ip"]):
        advice = prerequisites.advice("the cluster tests", lacking)
        pytest.fail(advice) if os.environ.get("CI") else pytest.skip(advice)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD"):  # the cluster profile has no default
            mp.setenv(name, secrets.token_urlsafe(32))
        # A subnet and names of their own: a `make cluster` on this machine is left alone.
        settings = private_settings(mp, tmp_path_factory.mktemp("cluster") / "var", profile="cluster",
                                    cluster_subnet="10.78.0", cluster_netns_prefix="lwt", sql_engine="trino",
                                    sim_rate=50, serving_reload_seconds=1)
        names = [s.name for s in stack.services(settings) if s.netns] + list(AROUND)
        try:
            started = time.monotonic()
            stack.up(settings, say=print, only=tuple(names))
            FIGURES["start-up to healthy"] = f"{time.monotonic() - started:.0f} s"
            register_champion(settings)  # a real model version, so the scorer writes verdicts throughout
            wait_for(lambda: trades_in_sql(settings) > 0, 300, "the first trades through Trino", every=2)
            yield settings
        finally:
            stopping = []
            started = time.monotonic()
            stack.down(settings, say=lambda line: (print(line), stopping.append(line)))
            FIGURES["stop"] = f"{time.monotonic() - started:.0f} s"
            network.down(settings)
            print("cluster figures:", FIGURES)
        # Every node stops gracefully: a broker's stop needs the controllers' approval, and down stops
        # the brokers while the quorum still runs (when brokers were controllers too, the last was killed).
        assert not [line for line in stopping if "killed" in line], stopping


def trades_in_sql(settings) -> int:
    try:
        with sql_engine(settings).connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM market.trades").scalar()
    except Exception:
        return 0


def end_offsets(settings) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "lakewatch-test-ends"})
    try:
        partitions = consumer.list_topics(TRADES, timeout=10).topics[TRADES].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(TRADES, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def committed(settings) -> dict[int, int]:
    """The market.trades offsets of the stream's newest committed batch (its checkpoint)."""
    root = settings.checkpoint_dir / "stream"
    batches = [int(p.name) for p in (root / "commits").iterdir() if p.name.isdigit()]
    if not batches:
        return {}
    source = json.loads((root / "offsets" / str(max(batches))).read_text().splitlines()[-1])
    return {int(p): offset for p, offset in source.get(TRADES, {}).items()}


def commit_times(settings) -> list[float]:
    """When each of the stream's batches was committed (its checkpoint's commit files)."""
    return sorted(p.stat().st_mtime for p in (settings.checkpoint_dir / "stream" / "commits").iterdir()
                  if p.name.isdigit())


def stalls(settings, fault: float, window: float = 30.0) -> str:
    """The stream's longest time without a commit from its last commit before the (wall-clock)
    `fault` to its first commit `window` s after it, beside the longest in the `window` s
    before the fault (the reference)."""
    wait_for(lambda: any(t > fault + window for t in commit_times(settings)), window + 180,
             "a commit after the window", every=0.5)
    times = commit_times(settings)
    before = [t for t in times if fault - window <= t <= fault]
    last_before = before[-1] if before else fault
    first_beyond = min(t for t in times if t > fault + window)
    after = [t for t in times if last_before <= t <= first_beyond]
    gap = lambda ts: max((b - a for a, b in zip(ts, ts[1:])), default=float("nan"))  # noqa: E731
    return f"longest stall {gap(after):.1f} s (before the fault: {gap(before):.1f} s)"


def seconds_to_catch_up(settings, ends: dict[int, int], since: float, timeout: float = 240) -> float:
    """Seconds from `since` until the stream has committed every offset below `ends`."""
    wait_for(lambda: all(committed(settings).get(p, 0) >= n for p, n in ends.items()), timeout,
             "the stream past every trade held at the fault", every=0.25)
    return time.monotonic() - since


def reconcile(settings, fault_at: float) -> int:
    """Stop the producer, let the stream drain, then by SQL on Trino: every offset of every
    market.trades partition is exactly once in trades or rejects, every bar is there once, and
    every bar up to the fault (wall clock) has exactly one verdict (reconcile_verdicts).
    Starts the producer again; returns the offsets checked."""
    stack.stop(settings, "ingestion", say=print)
    try:
        ends = end_offsets(settings)
        query = ("SELECT kafka_partition, count(*), count(DISTINCT kafka_offset), min(kafka_offset), "
                 "max(kafka_offset) FROM (SELECT kafka_partition, kafka_offset FROM market.trades UNION ALL "
                 "SELECT kafka_partition, kafka_offset FROM market.rejects WHERE topic = 'market.trades') "
                 "GROUP BY kafka_partition ORDER BY kafka_partition")

        def landed():
            with sql_engine(settings).connect() as connection:
                rows = connection.exec_driver_sql(query).all()
            return sum(r[1] for r in rows) >= sum(ends.values()) and rows

        rows = wait_for(landed, 240, "every produced trade in the lake", every=1)
        assert {r[0]: tuple(r[1:]) for r in rows} == {p: (n, n, 0, n - 1) for p, n in ends.items() if n}
        with sql_engine(settings).connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM (SELECT symbol, window_start FROM market.bars_1m "
                                              "GROUP BY 1, 2 HAVING count(*) > 1)").scalar() == 0
        wait_for(lambda: bars_match_trades(settings), 60, "every bar equal to its recomputation", every=2)
        verdicts = reconcile_verdicts(settings, fault_at)
        print(f"reconciled by SQL: {sum(ends.values())} offsets, {verdicts} bars with their one verdict")
        assert verdicts > 0
        return sum(ends.values())
    finally:
        stack.up(settings, say=print, only=("ingestion",))


VERDICTS_PER_BAR = ("SELECT b.symbol, CAST(to_unixtime(b.window_end) AS bigint), count(a.symbol) "
                    "FROM market.bars_1m b LEFT JOIN market.anomalies a "
                    "ON a.symbol = b.symbol AND a.window_start = b.window_start GROUP BY 1, 2")
VERDICTS_WITHOUT_A_BAR = ("SELECT count(*) FROM market.anomalies a LEFT JOIN market.bars_1m b "
                          "ON a.symbol = b.symbol AND a.window_start = b.window_start WHERE b.symbol IS NULL")


def scored_until(settings) -> dict[str, int]:
    """How far the scorer has scored each symbol (window_end, epoch s): the state it commits with its rows."""
    state = tables.commit_value(DeltaTable(str(tables.ANOMALIES.path(settings.lake_dir))), STATE_KEY) or {}
    return {symbol: us // 1_000_000 for symbol, us in state.items()}


def reconcile_verdicts(settings, fault_at: float) -> int:
    """Once the scorer has passed every bar that ended a minute before the fault, by SQL: each bar
    it has passed has exactly one verdict, no later bar has one, and no verdict lacks its bar.
    The scorer keeps running, so its state is read before the query and again after it."""
    through = (int(fault_at) // 60 - 1) * 60

    def passed_the_fault():
        before = scored_until(settings)
        with sql_engine(settings).connect() as connection:
            bars = connection.exec_driver_sql(VERDICTS_PER_BAR).all()
            orphans = connection.exec_driver_sql(VERDICTS_WITHOUT_A_BAR).scalar()
        if any(end <= through and n == 0 for _, end, n in bars):
            return None
        return before, bars, orphans, scored_until(settings)

    before, bars, orphans, after = wait_for(passed_the_fault, 240, "a verdict for every bar before the fault", every=2)
    passed = [(symbol, end, n) for symbol, end, n in bars if end <= before.get(symbol, -1)]
    assert [b for b in passed if b[2] != 1] == [], "bars the scorer passed without exactly one verdict"
    assert [b for b in bars if b[1] > after.get(b[0], -1) and b[2]] == [], "verdicts ahead of the scorer's state"
    assert orphans == 0, f"{orphans} verdicts for bars the lake does not hold"
    return len(passed)


def bars_match_trades(settings) -> bool:
    """Once the background merge has run (every few seconds), each bar equals its recomputation."""
    try:
        lake.assert_bars_match_trades(settings)
        return True
    except AssertionError:
        return False


def leader_of(settings, partition: int) -> str:
    topics = AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(TRADES, timeout=10).topics
    return f"kafka-{topics[TRADES].partitions[partition].leader}"


def in_sync_replicas(settings) -> int:
    topics = AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(TRADES, timeout=10).topics
    return min(len(p.isrs) for p in topics[TRADES].partitions.values())


def kafka_metric(settings, role: str, name: str) -> dict[str, float]:
    """`name` on each running `role` node that exports it (summed over its labels), read from the
    node's JMX exporter as Prometheus scrapes it: what the Kafka alerts read."""
    found, targets = {}, prometheus.cluster_targets(settings)
    for node in settings.cluster_nodes(role):
        if stack.running(settings, node.name) is None:
            continue
        text = requests.get(f"http://{targets[node.name]}/metrics", timeout=5).text
        samples = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
        if samples:
            found[node.name] = sum(samples)
    return found


def kill_node(settings, name: str) -> None:
    """kill -9 every process of the node (a worker's executor too), as when its machine dies."""
    current = stack.running(settings, name)
    assert current is not None, f"{name} is not running"
    for pid in stack.session_members(current.pid):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: stack.running(settings, name) is None, 30, f"{name} gone")


def test_the_stream_job_runs_its_executors_on_both_spark_workers(cluster):
    master = cluster.cluster_nodes("spark-master")[0]
    state = requests.get(spark.ui_url(cluster, master, "/json/"), timeout=5).json()
    [app] = state["activeapps"]
    workers = {w["id"]: w["host"] for w in state["workers"] if w["state"] == "ALIVE"}
    assert sorted(workers.values()) == sorted(cluster.address(n) for n in cluster.cluster_nodes("spark-worker"))
    used = {w["host"] for w in state["workers"] if w["state"] == "ALIVE" and w["coresused"] > 0}
    assert used == set(workers.values()), f"{app['name']} runs executors on {used} only"
    assert in_sync_replicas(cluster) == 3
    # What the Kafka alerts read, healthy: one active controller, no partition without a leader
    # and none under-replicated.
    assert sum(kafka_metric(cluster, "kafka-controller", ACTIVE_CONTROLLERS).values()) == 1
    assert set(kafka_metric(cluster, "kafka-controller", OFFLINE_PARTITIONS).values()) == {0}
    assert kafka_metric(cluster, "kafka", UNDER_REPLICATED) == {n.name: 0 for n in cluster.cluster_nodes("kafka")}
    FIGURES["RSS of the cluster's nodes"] = f"{sum(tree_rss_mb(stack.running(cluster, s.name).pid) for s in stack.services(cluster) if s.netns):.0f} MiB"
    FIGURES["RSS of the stream job (driver)"] = f"{tree_rss_mb(stack.running(cluster, 'stream').pid):.0f} MiB"
    since = time.monotonic()
    FIGURES["no fault (the reference): stream past what Kafka held"] = \
        f"{seconds_to_catch_up(cluster, end_offsets(cluster), since):.1f} s"


def fault_figures(cluster, label: str, fault, recover) -> float:
    """Apply `fault`, time the stream past what Kafka held at it, `recover`, then its stalls;
    returns when the fault came (wall clock)."""
    ends = end_offsets(cluster)
    since, at = time.monotonic(), time.time()
    fault()
    FIGURES[f"{label}: stream past what Kafka held"] = f"{seconds_to_catch_up(cluster, ends, since):.1f} s"
    recover()
    FIGURES[label] = stalls(cluster, at)
    return at


def back_in_every_isr(cluster, name: str) -> None:
    back = time.monotonic()
    wait_for(lambda: in_sync_replicas(cluster) == 3, 120, f"{name} back in every ISR", every=1)
    FIGURES[f"{name}: back in every ISR"] = f"{time.monotonic() - back:.1f} s"


def test_killing_the_leader_of_a_trades_partition_loses_and_duplicates_nothing(cluster):
    victim = leader_of(cluster, 0)

    def restart():
        # The survivors lead partitions that lost a replica: what KafkaUnderReplicatedPartitions reads.
        wait_for(lambda: sum(kafka_metric(cluster, "kafka", UNDER_REPLICATED).values()) > 0, 60,
                 f"partitions under-replicated without {victim}", every=1)
        stack.up(cluster, say=print, only=(victim,))
        back_in_every_isr(cluster, victim)

    at = fault_figures(cluster, f"kill -9 a partition leader ({victim}), restarted", lambda: kill_node(cluster, victim),
                       restart)
    assert reconcile(cluster, at) > 0


def test_cutting_a_broker_off_and_healing_it_loses_and_duplicates_nothing(cluster):
    victim = next(n for n in cluster.cluster_nodes("kafka") if n.name == leader_of(cluster, 1))
    cut_at = []

    def cut():
        cut_at.append(time.monotonic())
        network.cut(cluster, victim)

    def heal():
        time.sleep(max(0.0, 20 - (time.monotonic() - cut_at[0])))  # longer than the brokers' session timeout
        network.heal(cluster, victim)
        back_in_every_isr(cluster, victim.name)

    try:
        at = fault_figures(cluster, f"cut a partition leader ({victim.name}) off for 20 s, healed", cut, heal)
    finally:
        network.heal(cluster, victim)
    assert reconcile(cluster, at) > 0


def test_killing_a_spark_worker_retries_its_tasks_on_the_other_exactly_once(cluster):
    victim = cluster.cluster_nodes("spark-worker")[0].name
    at = fault_figures(cluster, f"kill -9 {victim} and its executor, restarted", lambda: kill_node(cluster, victim),
                       lambda: stack.up(cluster, say=print, only=(victim,)))
    assert reconcile(cluster, at) > 0


def test_killing_a_trino_worker_under_dashboard_queries_leaves_no_broken_chart_once_noticed(cluster):
    """Superset runs every chart's query of every dashboard in a loop (forced past any cache) while a
    Trino worker is killed; once the coordinator has noticed, every query answers and each
    dashboard renders in a browser without an error box."""
    user, password = cluster.superset_admin_user, cluster.superset_admin_password
    api = SupersetAPI(cluster.url(cluster.superset_port), user, password)
    slugs = [d["slug"] for d in api.listing("dashboard")]
    charts = [c["id"] for slug in slugs for c in api.get(f"/api/v1/dashboard/{slug}/charts")["result"]]
    outcomes: list[tuple[float, float, bool]] = []  # (started, ended, answered)
    stop = threading.Event()

    def run(chart: int, session: SupersetAPI) -> bool:
        try:
            return all(r.get("status") == "success" for r in session.chart_data(chart)["result"])
        except Exception:
            return False

    def query_like_a_dashboard():
        session = SupersetAPI(api.base, user, password)  # a session of its own: requests' are not shared
        while not stop.is_set():
            for chart in charts:
                started = time.monotonic()
                answered = run(chart, session)
                outcomes.append((started, time.monotonic(), answered))

    worker = threading.Thread(target=query_like_a_dashboard, daemon=True)
    worker.start()
    try:
        time.sleep(3)
        node, coordinator = cluster.cluster_nodes("trino-worker")[0], cluster.cluster_nodes("trino-coordinator")[0]
        victim, address = node.name, cluster.address(node)
        killed = time.monotonic()
        kill_node(cluster, victim)

        def noticed():  # the coordinator's failure detector (not a query: it may land on the dead worker)
            failed = requests.get(trino.url(cluster, coordinator, "/v1/node/failed"),
                                  auth=(cluster.trino_admin_user, ""), timeout=5)
            return failed.ok and address in failed.text

        wait_for(noticed, 120, "the coordinator noticing the dead worker", every=0.5)
        noticed_at = time.monotonic()
        time.sleep(5)  # its node list follows the failure detector at its next poll (5 s)
        answered = [run(chart, api) for chart in charts]  # the dashboards opened again
    finally:
        stop.set()
        worker.join(120)
    hit = [(ended - started, ok) for started, ended, ok in outcomes if ended >= killed and started <= noticed_at]
    FIGURES[f"kill -9 {victim}: coordinator noticed"] = f"{noticed_at - killed:.1f} s"
    FIGURES[f"kill -9 {victim}: Superset chart queries under way"] = (
        f"{sum(not ok for _, ok in hit)} of {len(hit)} failed, the slowest took {max((d for d, _ in hit), default=0):.1f} s")
    assert all(answered), f"{answered.count(False)} of {len(answered)} chart queries failed once the coordinator noticed"
    assert all(ok for started, _, ok in outcomes if started > noticed_at + 5)
    with browser_page(api.base, user, password) as page:
        for slug in slugs:
            assert_dashboard_renders(page, api, slug)
    stack.up(cluster, say=print, only=(victim,))
