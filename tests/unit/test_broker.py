"""The broker's cluster id, which its storage tool takes on the command line."""
import uuid

from stack.services import broker


def test_cluster_id_never_starts_with_a_dash_that_the_storage_tool_would_read_as_an_option(monkeypatch):
    # 0xF8 encodes to '-' first in URL-safe base64; the second draw does not.
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(draws))
    found = broker.cluster_id()
    assert not found.startswith("-")
    assert len(found) == 22


def test_cluster_ids_are_new_each_time():
    assert broker.cluster_id() != broker.cluster_id()
