"""Trains the bot when its training data changed, and says which trained model to serve.

A trained model is named by a hash of everything it is trained from (config, domain, data/),
so `make up` trains only after an edit (about 25 s) and otherwise starts straight away. Standard library only: it runs in the core venv and calls Rasa in its own.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from lakewatch.settings import Settings

CHATBOT = Path(__file__).resolve().parent
# Debian's wamerican: FuzzyEntityExtractor (fuzzy_entities.py) reads it when the bot is trained.
WORD_LIST = "/usr/share/dict/words"
INPUTS = ("config.yml", "domain.yml", "data", "fuzzy_entities.py")  # the last is a component of the model
# The repo root on the path: config.yml names a component of ours (chatbot.fuzzy_entities).
RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(CHATBOT.parent)}


def fingerprint() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = CHATBOT / name
        for file in sorted(path.rglob("*.yml")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(CHATBOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(settings: Settings) -> Path:
    """Trained models sit beside the venvs: like a venv, a model is built from files in the repo
    (and Rasa's version), not from data, so every state folder on the machine can share it."""
    return settings.venv_dir / "rasa-models" / f"lakewatch-{fingerprint()}.tar.gz"


def rasa_bin(settings: Settings) -> Path:
    return settings.venv_dir / "rasa" / "bin" / "rasa"


def ensure_trained(settings: Settings, say=print) -> Path:
    """The trained model for the current training data, training it first if there is none."""
    model = model_path(settings)
    if model.exists():
        return model
    model.parent.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "chatbot-train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"  rasa       training the bot on chatbot/data (about 30 s; log: {log_path}) ...")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=model.parent) as out, open(log_path, "ab") as log:
        done = subprocess.run([str(rasa_bin(settings)), "train", "--fixed-model-name", "model", "--out", out],
                              cwd=CHATBOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, **RASA_ENV, "RASA_CACHE_DIRECTORY": str(model.parent / "cache")})
        trained = Path(out) / "model.tar.gz"
        if done.returncode != 0 or not trained.exists():
            raise RuntimeError(f"training the bot failed (exit code {done.returncode}); see {log_path}")
        os.replace(trained, model)  # whole or not at all: an interrupted training leaves no model behind
    for old in model.parent.glob("lakewatch-*.tar.gz"):  # keep only the model of the current data
        if old != model:
            old.unlink()
    say(f"  rasa       trained in {time.monotonic() - started:.0f} s")
    return model
