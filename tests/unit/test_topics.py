"""ingestion/topics.py's wait for a leader on every partition, with the broker's metadata answers
played back (an AdminClient that answers as a broker just started does)."""
from types import SimpleNamespace

import pytest

from ingestion import topics
from lakewatch import settings as settings_module

SETTINGS = settings_module.load({})
WANTED = SETTINGS.topics.partitions(SETTINGS.trades_partitions)


def metadata(leader: int) -> SimpleNamespace:
    return SimpleNamespace(topics={name: SimpleNamespace(error=None, partitions={
        p: SimpleNamespace(leader=leader, error=None) for p in range(n)}) for name, n in WANTED.items()})


@pytest.fixture
def broker_answers(monkeypatch):
    """The metadata answers to play back, in order (the last one repeats); returns how many were asked."""
    answers, asked = [], []

    class Admin:
        def __init__(self, config):
            pass

        def list_topics(self, timeout):
            asked.append(timeout)
            return answers[min(len(asked), len(answers)) - 1]

        def create_topics(self, new, operation_timeout):
            raise AssertionError(f"every topic exists: nothing to create, not {new}")

    monkeypatch.setattr(topics, "AdminClient", Admin)
    monkeypatch.setattr(topics.time, "sleep", lambda seconds: None)
    return answers, asked


def test_existing_topics_are_waited_for_until_every_partition_has_a_leader(broker_answers):
    answers, asked = broker_answers
    answers += [metadata(-1), metadata(-1), metadata(1)]  # a broker just started: no leader yet, twice
    assert topics.ensure_topics(SETTINGS) == WANTED
    assert len(asked) == 3


def test_topics_that_exist_with_leaders_take_one_metadata_request(broker_answers):
    answers, asked = broker_answers
    answers.append(metadata(1))
    assert topics.ensure_topics(SETTINGS) == WANTED
    assert len(asked) == 1
