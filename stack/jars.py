"""Fetches the JVM jars lakewatch runs, with Maven, from the small POMs in the repo.

    python -m stack.jars          # every set (make up, make test and make venv run this)
    python -m stack.jars spark    # one set

Three sets: `kafka` (kafka/pom.xml: the broker, its console tools, log4j2, the JMX exporter),
`spark` (spark/pom.xml: Spark's Kafka source and delta-spark) and `trino` (trino/pom.xml: Trino's
server tarball, unpacked with only the plugins the POM names). Each is copied out of Maven's
local repository into <venvs>/jars/<set>, beside the venvs, since it is built from pins like
them. A set is fetched again only when its POM changed (a hash stored with it), so later runs
cost a file read and need no network: nothing is downloaded when a service starts (no Ivy).

The spark set leaves out every artifact pyspark already ships (Spark's own Hadoop, Scala,
Jackson...): two versions of one class on a classpath is the classic Spark failure. Its pins
must match pyproject.toml's pyspark and delta-spark, or it stops before Maven runs.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from lakewatch.settings import REPO_ROOT, load

POMS = {name: REPO_ROOT / name / "pom.xml" for name in ("kafka", "spark", "trino")}
# Pinned: the plugin version Maven would pick by default (2.8) lacks `list`'s absolute paths.
_LIST = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:list"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class JarsError(RuntimeError):
    pass


def jar_dir(name: str) -> Path:
    return load().jars_dir / name


def classpath(name: str) -> list[Path]:
    """The set's jars, for a -cp or spark.jars; one sentence if the set was never fetched."""
    folder = jar_dir(name)
    if not (folder / ".lakewatch-installed").exists():
        raise JarsError(f"the {name} jars are not in {folder}; fetch them with: make venv")
    return sorted(folder.glob("*.jar"))


def pom_property(name: str, key: str) -> str:
    value = ET.parse(POMS[name]).getroot().find(f"m:properties/m:{key}", _NS)
    if value is None or not value.text:
        raise JarsError(f"{POMS[name].relative_to(REPO_ROOT)} has no <{key}> property")
    return value.text.strip()


def python_pin(package: str) -> str:
    found = re.search(rf'"{re.escape(package)}==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    if not found:
        raise JarsError(f"pyproject.toml pins no {package}")
    return found.group(1)


def check_spark_pins() -> None:
    """pyspark, delta-spark and the Kafka connector must be one Spark: stop with one sentence if not."""
    spark, delta, pyspark, delta_py = (pom_property("spark", "spark.version"), pom_property("spark", "delta.version"),
                                       python_pin("pyspark"), python_pin("delta-spark"))
    pom = ET.parse(POMS["spark"]).getroot()
    delta_artifact = next(a.text for a in pom.iterfind(".//m:artifactId", _NS) if a.text.startswith("delta-spark_"))
    spark_minor = ".".join(pyspark.split(".")[:2])
    if spark != pyspark:
        raise JarsError(f"spark/pom.xml's spark.version {spark} (Spark's Kafka source) differs from pyproject.toml's "
                        f"pyspark=={pyspark}; make them equal")
    if delta != delta_py:
        raise JarsError(f"spark/pom.xml's delta.version {delta} differs from pyproject.toml's delta-spark=={delta_py}; "
                        f"make them equal")
    if not delta_artifact.startswith(f"delta-spark_{spark_minor}_"):
        raise JarsError(f"spark/pom.xml's {delta_artifact} is built for another Spark than pyspark {pyspark}; "
                        f"use delta-spark_{spark_minor}_2.13")


def _artifact_of(filename: str) -> str:
    """kafka-clients-3.9.2.jar -> kafka-clients; zstd-jni-1.5.7-3.jar -> zstd-jni (a version has no `_`)."""
    found = re.match(r"(.+?)-(\d+(?:\.\d+)*(?:[-.][A-Za-z0-9]+)*)\.jar$", filename)
    return found.group(1) if found else filename


def _shipped_by_pyspark() -> set[str]:
    """The artifacts in pyspark's jars folder (this runs in the core venv, which has pyspark)."""
    import pyspark

    return {_artifact_of(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def _fingerprint(name: str) -> str:
    return hashlib.sha256(POMS[name].read_bytes() + Path(__file__).read_bytes()).hexdigest()


def _resolve(name: str, log_path: Path) -> list[Path]:
    """Maven resolves the POM (downloading what its local repository lacks); the paths of its runtime jars."""
    listing = log_path.with_suffix(".list")
    command = ["mvn", "-B", "-f", str(POMS[name]), _LIST, "-DincludeScope=runtime",
               "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={listing}"]
    downloads = 0
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
        for line in process.stdout:
            log.write(line)
            if line.startswith("[INFO] Downloaded from"):
                downloads += 1
                if downloads % 25 == 0:
                    print(f"lakewatch:   {name} jars: {downloads} files downloaded ...", flush=True)
        code = process.wait()
    if code != 0:
        errors = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.startswith("[ERROR]")][:3]
        raise JarsError(f"Maven could not resolve {POMS[name].relative_to(REPO_ROOT)} (is Maven Central reachable?); "
                        f"{log_path} says:\n" + "\n".join(errors))
    paths = re.findall(r":(?:compile|runtime):(/\S+\.(?:jar|tar\.gz))", listing.read_text())
    return [Path(p) for p in paths]


def _unpack_trino(tarball: Path, folder: Path) -> int:
    """Unpack Trino's server without the plugins trino/pom.xml does not name; returns the files kept.

    The tarball stores a jar shared by several folders once and hard-links the others to it,
    often from a plugin left out: such a target is kept aside until its links are made.
    """
    import tarfile

    plugins = {p.strip() for p in pom_property("trino", "trino.plugins").split(",") if p.strip()}

    def wanted(member: str) -> bool:
        inner = member.partition("/")[2]
        top, _, rest = inner.partition("/")
        return top in ("lib", "NOTICE") or (top == "plugin" and rest.partition("/")[0] in plugins)

    with tarfile.open(tarball, "r|gz") as archive:  # one cheap pass over the headers
        linked = {m.linkname for m in archive if m.islnk() and wanted(m.name)}
    aside = folder / ".link-targets"
    kept = 0
    with tarfile.open(tarball, "r|gz") as archive:
        for member in archive:
            inner = member.name.partition("/")[2]
            if member.islnk():
                if wanted(member.name):
                    source = folder / member.linkname.partition("/")[2]
                    if not source.exists():
                        source = aside / member.linkname.partition("/")[2]
                    (folder / inner).parent.mkdir(parents=True, exist_ok=True)
                    (folder / inner).hardlink_to(source)
                    kept += 1
            elif member.isfile() and (wanted(member.name) or member.name in linked):
                target = folder / inner if wanted(member.name) else aside / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.extractfile(member) as data, open(target, "wb") as out:
                    shutil.copyfileobj(data, out, 1 << 20)
                target.chmod(member.mode & 0o755 | 0o644)
                kept += wanted(member.name)
    shutil.rmtree(aside, ignore_errors=True)
    return kept


def install_dir(name: str) -> Path:
    """An unpacked set's folder (trino: lib/ and plugin/); one sentence if it was never fetched."""
    folder = jar_dir(name)
    if not (folder / ".lakewatch-installed").exists():
        raise JarsError(f"the {name} server is not in {folder}; fetch it with: make venv")
    return folder


def ensure_jars(name: str) -> Path:
    folder = jar_dir(name)
    stamp = folder / ".lakewatch-installed"
    wanted = _fingerprint(name)
    if stamp.exists() and stamp.read_text() == wanted:
        return folder
    if name == "spark":
        check_spark_pins()
    if shutil.which("mvn") is None:
        raise JarsError("the jars need Maven (mvn), which is missing; install it with: apt-get install -y maven")
    settings = load()
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"jars-{name}.log"
    started = time.monotonic()
    print(f"lakewatch: fetching the {name} jars from Maven Central into {folder} (log: {log_path}) ...", flush=True)
    jars = _resolve(name, log_path)
    skip = _shipped_by_pyspark() if name == "spark" else set()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if name == "trino":
        files = _unpack_trino(jars[0], folder)
        stamp.write_text(wanted)
        print(f"lakewatch: trino server ready: {files} files in {time.monotonic() - started:.0f} s.", flush=True)
        return folder
    kept = [p for p in jars if _artifact_of(p.name) not in skip]
    for path in kept:
        shutil.copy2(path, folder / path.name)
    stamp.write_text(wanted)
    print(f"lakewatch: {name} jars ready: {len(kept)} jars"
          + (f" ({len(jars) - len(kept)} left to pyspark's own)" if skip else "")
          + f" in {time.monotonic() - started:.0f} s.", flush=True)
    return folder


def main(argv: list[str]) -> int:
    names = argv or list(POMS)
    unknown = [n for n in names if n not in POMS]
    if unknown:
        print(f"usage: python -m stack.jars [{'|'.join(POMS)} ...]", file=sys.stderr)
        return 2
    try:
        for name in names:
            ensure_jars(name)
    except JarsError as exc:
        print(f"lakewatch: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
