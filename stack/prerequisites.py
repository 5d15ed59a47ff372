"""What lakewatch needs from the system, checked before anything is built or started.

    python3 -m stack.prerequisites up     # the first step of `make up`
    python3 -m stack.prerequisites test   # of `make test`, and so of .ci/run
    python3 -m stack.prerequisites venv   # of `make venv`

A `make up` on a machine without Prometheus used to build every venv, backfill, train and
start ten services before the eleventh failed, 13 minutes in. Each requirement is declared
here once, with what it is for and the Debian package that provides it. When something is
missing and this runs as root with apt-get, it installs the packages (LAKEWATCH_AUTO_INSTALL=no
turns that off); otherwise it stops with one sentence naming the command to run.

Standard library only, like bootstrap.py: it runs before any venv exists. When nothing is
missing it costs a few file lookups and one `--version` per interpreter (5-10 ms), every time.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from chatbot.training import WORD_LIST
from lakewatch import settings
from stack.bootstrap import VENVS, find_interpreter
from monitoring import prometheus


@dataclass(frozen=True)
class Requirement:
    name: str
    purpose: str
    present: Callable[[], bool]
    package: str | None = None  # Debian 12's package, if it has one
    install: str = ""  # the command when there is no package


class PrerequisiteError(RuntimeError):
    pass


def _python_with_venv(interpreter: str) -> Callable[[], bool]:
    def present() -> bool:
        found = find_interpreter(interpreter)
        if found is None:
            return False
        # venv needs ensurepip, which Debian ships apart (python3.X-venv). Its usual place beside
        # the binary spares starting Python; elsewhere, ask the interpreter.
        if (Path(os.path.realpath(found)).parent.parent / "lib" / interpreter / "ensurepip").is_dir():
            return True
        return subprocess.run([found, "-I", "-c", "import ensurepip"], capture_output=True).returncode == 0
    return present


def _trino_java() -> bool:
    loaded = settings.load()
    return loaded.sql_engine != "trino" or loaded.trino_java.is_file()


def _command(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


GO_MINIMUM = (1, 25)  # statsd_exporter's go.mod (stack/services/statsd.py)


def go_binary() -> str | None:
    """Go from PATH, or where go.dev's archive unpacks (/usr/local/go), which PATH often lacks."""
    found = shutil.which("go")
    return found or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)


def _go() -> bool:
    found = go_binary()
    if found is None:
        return False
    done = subprocess.run([found, "env", "GOVERSION"], capture_output=True, text=True)
    numbers = done.stdout.strip().removeprefix("go").split(".")
    try:
        return done.returncode == 0 and tuple(int(n) for n in numbers[:2]) >= GO_MINIMUM
    except ValueError:
        return False


REQUIREMENTS = {r.name: r for r in (
    Requirement("python3.11", "with venv, for the core, Superset and actions venvs", _python_with_venv("python3.11"),
                package="python3.11-venv"),
    Requirement("python3.10", "with venv, for Rasa 3.6; Debian 12 has no package, pyenv's works",
                _python_with_venv("python3.10"), install="pyenv install 3.10"),
    Requirement("java", "the Kafka broker and Spark", _command("java"), package="openjdk-17-jre-headless"),
    Requirement("mvn", "fetching the Kafka, Spark and Trino jars from Maven Central", _command("mvn"), package="maven"),
    Requirement("Java 24 or newer", "Trino 476 (LAKEWATCH_SQL_ENGINE=duckdb runs without it)", _trino_java,
                install="install a JDK 25 (Temurin) at /usr/lib/jvm/temurin-25-jdk-amd64 or set "
                        "LAKEWATCH_TRINO_JAVA_HOME to one"),
    Requirement("go", "building Prometheus' statsd_exporter, which turns Airflow's StatsD into metrics (once); "
                f"Go {'.'.join(map(str, GO_MINIMUM))} or newer", _go,
                install="unpack Go from https://go.dev/dl into /usr/local/go (Debian 12's golang is too old)"),
    Requirement("an English word list", "training the bot to tell misspelt symbols from ordinary words",
                lambda: Path(WORD_LIST).is_file(), package="wamerican"),
    Requirement("kcat", "the test that a standard Kafka client talks to the broker", _command("kcat"), package="kcat"),
    Requirement("prometheus", "the stack's monitoring", _command("prometheus"), package="prometheus"),
    Requirement("Prometheus's console libraries", "its console page",
                lambda: prometheus.console_libraries() is not None, package="prometheus"),
    Requirement("promtool", "the alert rules' tests", _command("promtool"), package="prometheus"),
    Requirement("chromium", "the browser tests", _command("chromium"), package="chromium"),
    Requirement("docker-compose", "the check of docker-compose.yml", _command("docker-compose"),
                package="docker-compose"),
    Requirement("ip", "the cluster's network namespaces", _command("ip"), package="iproute2"),
    Requirement("root", "the cluster's network namespaces (CAP_NET_ADMIN)", lambda: os.geteuid() == 0,
                install="run it as root, e.g. sudo make cluster"),
)}
# `make venv` needs the interpreters bootstrap.py builds venvs from, `make up` those and what the
# stack runs, `make test` all that and the tools of the tests.
VENV = tuple(dict.fromkeys(interpreter for interpreter, _, _ in VENVS.values())) + ("java", "mvn")
UP = VENV + ("Java 24 or newer", "prometheus", "Prometheus's console libraries", "go", "an English word list")
SETS = {"venv": VENV, "up": UP, "cluster": UP + ("ip", "root"),
        "test": UP + ("promtool", "chromium", "docker-compose", "kcat")}


def missing(names: Iterable[str]) -> list[Requirement]:
    return [REQUIREMENTS[name] for name in names if not REQUIREMENTS[name].present()]


def check(which: str) -> list[Requirement]:
    """What `make <which>` needs (a key of SETS) and this machine lacks."""
    return missing(SETS[which])


def _packages(needed: list[Requirement]) -> list[str]:
    return list(dict.fromkeys(r.package for r in needed if r.package))


def _names(needed: list[Requirement], purposes: bool = True) -> str:
    shown = [f"{r.name} ({r.purpose})" if purposes else r.name for r in needed]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def advice(needer: str, needed: list[Requirement]) -> str:
    """The one sentence: who needs what, and the command that installs it."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    packages = _packages(needed)
    commands = ([f"{sudo}apt-get install -y --no-install-recommends {' '.join(packages)}"] if packages else []) + [
        r.install for r in needed if not r.package]
    one = len(needed) == 1
    return (f"{needer} needs {_names(needed)}, which {'is' if one else 'are'} missing; "
            f"install {'it' if one else 'them'} with: {' && '.join(commands)}")


def _can_install(needed: list[Requirement]) -> bool:
    return (os.geteuid() == 0 and shutil.which("apt-get") is not None and all(r.package for r in needed)
            and settings.load().auto_install)


def _apt_get(needer: str, needed: list[Requirement]) -> None:
    packages = _packages(needed)
    started = time.monotonic()
    print(f"lakewatch: {needer} needs {_names(needed)}; installing Debian's {' '.join(packages)} as root "
          f"(LAKEWATCH_AUTO_INSTALL=no stops that) ...", flush=True)
    apt_get = shutil.which("apt-get")
    steps = [[apt_get, "update", "-q"], [apt_get, "install", "-y", "-q", "--no-install-recommends", *packages]]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for i, command in enumerate(steps, 1):
        shown = " ".join(["apt-get", *command[1:]])
        print(f"lakewatch:   [{i}/{len(steps)}] {shown} ...", flush=True)
        code = subprocess.run(command, env=env, stdin=subprocess.DEVNULL).returncode
        if code != 0:
            raise PrerequisiteError(f"`{shown}` failed (exit code {code}, its output is above), so {needer} cannot "
                                    f"get {_names(needed, purposes=False)}")
    print(f"lakewatch: installed {' '.join(packages)} in {time.monotonic() - started:.0f} s.", flush=True)


def ensure(which: str) -> None:
    """Return at once when nothing is missing; install what is, as root with apt-get; else raise
    PrerequisiteError with the sentence."""
    needed = check(which)
    if not needed:
        return
    needer = f"make {which}"
    if not _can_install(needed):
        raise PrerequisiteError(advice(needer, needed))
    _apt_get(needer, needed)
    still = check(which)
    if still:  # e.g. dpkg told to leave out /usr/share/doc, where Debian keeps the console libraries
        packages = " ".join(_packages(still))
        raise PrerequisiteError(f"{needer} still lacks {_names(still, purposes=False)} after apt-get installed "
                                f"{packages}; see where the package put its files with: dpkg -L {packages}")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SETS:
        print(f"usage: python3 -m stack.prerequisites {{{'|'.join(SETS)}}}", file=sys.stderr)
        return 2
    try:
        ensure(argv[0])
    except (PrerequisiteError, ValueError) as exc:
        print(f"lakewatch: {exc}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
