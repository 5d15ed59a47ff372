"""Creates the venvs lakewatch runs in, then runs a command in one: the Makefile's front door.

    python3 -m stack.bootstrap core -- -m stack.cli up

Standard library only: it runs before any venv exists. A venv is (re)installed only when its
inputs changed (a hash of the files it is built from, stored in the venv), so every `make`
target can call it and a second run costs a few milliseconds. Each component with its own
pins gets its own venv, as it would get its own container; later issues add theirs to VENVS.

Every install takes constraints.txt (`-c`): the one version of each package several venvs share.
The venvs whose code imports lakewatch besides their own pins (superset, actions, airflow) also get the
repo itself, editable and without its dependencies (LAKEWATCH_WITHOUT_DEPS), so `import lakewatch`
works there the conventional way; the rasa venv (Python 3.10, below the package's
requires-python) runs its modules with `python -m` from the repo root instead.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lakewatch.settings import REPO_ROOT, load

CONSTRAINTS = "constraints.txt"  # the versions shared by several venvs (and the images)
_CONSTRAINED = ["-c", f"{REPO_ROOT}/{CONSTRAINTS}"]

# name -> (interpreter, pip arguments, files whose content decides a reinstall)
VENVS: dict[str, tuple[str, list[str], list[str]]] = {
    # Everything: every component's group and the test tools (pyproject.toml's optional dependencies).
    "core": ("python3.11", [*_CONSTRAINED, "-e", f"{REPO_ROOT}[all,test]"], ["pyproject.toml", CONSTRAINTS]),
    "superset": ("python3.11", [*_CONSTRAINED, "-r", f"{REPO_ROOT}/superset/requirements.txt"],
                 ["superset/requirements.txt", CONSTRAINTS, "pyproject.toml"]),
    "rasa": ("python3.10", [*_CONSTRAINED, "-r", f"{REPO_ROOT}/chatbot/requirements-rasa.txt"],
             ["chatbot/requirements-rasa.txt", CONSTRAINTS]),
    "actions": ("python3.11", [*_CONSTRAINED, "-r", f"{REPO_ROOT}/chatbot/requirements-actions.txt"],
                ["chatbot/requirements-actions.txt", CONSTRAINTS, "pyproject.toml"]),
    # NAB's own scorer (model/nab.py), for the benchmark and training on NAB (pandas alone; seconds to build).
    "nab": ("python3.11", [*_CONSTRAINED, "-r", f"{REPO_ROOT}/model/nab-requirements.txt"],
            ["model/nab-requirements.txt", CONSTRAINTS]),
    # Apache Airflow (stack/services/airflow.py); its tasks run in the core venv.
    "airflow": ("python3.11", [*_CONSTRAINED, "-r", f"{REPO_ROOT}/airflow/requirements.txt"],
                ["airflow/requirements.txt", CONSTRAINTS, "pyproject.toml"]),
}
# Venvs that also get the repo as a package, editable, without its dependencies: their code
# (superset_config.py, the action server, the DAG's settings) imports lakewatch, and their own pins stay theirs
# (Superset's SQLAlchemy 1.4). Only the packages pyproject.toml lists are importable from it:
# superset/ and trino/ are not, so `import superset` stays Apache Superset.
LAKEWATCH_WITHOUT_DEPS = ("superset", "actions", "airflow")


class BootstrapError(RuntimeError):
    pass


def _fingerprint(interpreter: str, pip_args: list[str], inputs: list[str], extra_steps: list[list[str]]) -> str:
    digest = hashlib.sha256(" ".join([interpreter, *pip_args]).encode())
    for step in extra_steps:
        digest.update(b"\0" + " ".join(step).encode())
    for name in inputs:
        digest.update((REPO_ROOT / name).read_bytes())
    return digest.hexdigest()


def find_interpreter(interpreter: str) -> str | None:
    """The interpreter's real path. pyenv puts a shim for every installed version on PATH, and a
    shim of a version that is not selected fails to run: then take the version's own binary.
    Those binaries are tried before a shim, which costs a run of pyenv (~0.2 s): the
    prerequisites check (stack/prerequisites.py) calls this on every `make up`."""
    found = shutil.which(interpreter)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    version = interpreter.removeprefix("python")
    builds = [str(p) for p in sorted(pyenv_root.glob(f"versions/{version}.*/bin/{interpreter}"), reverse=True)]
    shim = found is not None and Path(found).parent == pyenv_root / "shims"
    for candidate in [*builds, found] if shim else [found, *builds]:
        if candidate and subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
            return candidate
    return None


def extra_pip_steps(name: str) -> list[list[str]]:
    """pip arguments of the installs after the venv's own packages: the repo, without its dependencies."""
    if name in LAKEWATCH_WITHOUT_DEPS:
        return [["--no-deps", "-e", str(REPO_ROOT)]]
    return []


def ensure_venv(name: str) -> Path:
    """Return the venv's python, creating or updating the venv first if needed."""
    interpreter, pip_args, inputs = VENVS[name]
    extra = extra_pip_steps(name)
    settings = load()
    venv = settings.venv_dir / name
    python = venv / "bin" / "python"
    stamp = venv / ".lakewatch-installed"
    wanted = _fingerprint(interpreter, pip_args, inputs, extra)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python

    found = find_interpreter(interpreter)
    if not found:
        from stack import prerequisites  # it imports this module

        needed = [prerequisites.REQUIREMENTS[interpreter]]
        raise BootstrapError(prerequisites.advice(f"the '{name}' venv", needed) + ".")
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"bootstrap-{name}.log"
    started = time.monotonic()
    print(f"lakewatch: installing the '{name}' venv in {venv} (log: {log_path}) ...", flush=True)
    with open(log_path, "w") as log:
        steps = [
            ("creating the venv", [found, "-m", "venv", str(venv)]),
            ("upgrading pip", [str(python), "-m", "pip", "install", "--upgrade", "pip>=24"]),
            ("installing packages", [str(python), "-m", "pip", "install", "--progress-bar", "off", *pip_args]),
            *(("installing lakewatch itself (no dependencies)",
               [str(python), "-m", "pip", "install", "--progress-bar", "off", *args]) for args in extra),
        ]
        for i, (what, command) in enumerate(steps, 1):
            print(f"lakewatch:   [{i}/{len(steps)}] {what} ...", flush=True)
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT).returncode != 0:
                tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-5:])
                raise BootstrapError(f"{what} for the '{name}' venv failed (is PyPI reachable?); the end of "
                                     f"{log_path} says:\n{tail}")
    stamp.write_text(wanted)
    print(f"lakewatch: '{name}' venv ready in {time.monotonic() - started:.0f} s.", flush=True)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in VENVS:
        print(f"usage: python3 -m stack.bootstrap {{{'|'.join(VENVS)}}} [-- python-args ...]", file=sys.stderr)
        return 2
    try:
        python = ensure_venv(argv[0])
    except (BootstrapError, ValueError) as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 1
    rest = argv[2:] if len(argv) > 1 and argv[1] == "--" else argv[1:]
    if rest:
        os.execv(python, [str(python), *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
