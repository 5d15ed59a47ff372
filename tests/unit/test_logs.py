import json
import logging

from lakewatch import logs


def test_log_lines_are_json_with_fields_and_no_secrets(monkeypatch, capsys):
    monkeypatch.setenv("FINNHUB_API_KEY", "key-abc-999")
    log = logs.setup("test-service")
    logs.event(log, "connecting to wss://ws.finnhub.io?token=key-abc-999", attempt=2)
    log.warning("GET https://finnhub.io/api/v1/quote?symbol=AAPL&token=other-token failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["service"] == "test-service" and lines[0]["level"] == "info" and lines[0]["attempt"] == 2
    assert "key-abc-999" not in json.dumps(lines) and "other-token" not in json.dumps(lines)
    assert "token=***" in lines[1]["msg"]
    logging.getLogger().handlers.clear()


def test_a_file_logger_writes_json_to_its_file_alone_and_scrubs_secrets(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FINNHUB_API_KEY", "key-abc-999")
    log = logs.to_file("backfill", tmp_path / "backfill.log")
    log.warning("GETPID [lakewatch-bootstrap#producer-3]: Coordinator load in progress: retrying (key-abc-999)")
    (line,) = (tmp_path / "backfill.log").read_text().splitlines()
    entry = json.loads(line)
    assert entry["service"] == "backfill" and entry["level"] == "warning" and "retrying (***)" in entry["msg"]
    assert capsys.readouterr().err == ""
    for handler in log.handlers:
        handler.close()
