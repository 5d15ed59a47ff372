"""Patches of third-party internals, guarded: each says what it relies on, so a library upgrade
that changes it fails a test, with a sentence naming the patch to re-check, instead of quietly
changing what the patch does.

A component keeps all its patches in one module, as a PATCHES tuple: chatbot/rasa_patches.py
(Rasa) and superset/superset_patches.py (Superset, duckdb_engine). Each Patch records the
sha256 of the source of every function or class it relies on, as it was when the patch was
written and measured, and a behaviour check: applied in a fresh process, the patched code gives
the original's answer on a small input. tests/unit/test_patch_guards.py runs, in the venv
where each library is installed,

    <venv>/bin/python -m lakewatch.patches chatbot.rasa_patches
    <venv>/bin/python -m lakewatch.patches superset/superset_patches.py

which prints one sentence per patch to re-check and exits 1 if any. `--hashes` prints the
current hashes, to record after re-checking a patch against a new version.

Standard library only: it runs in every venv, Rasa's Python 3.10 included.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable


@dataclass(frozen=True)
class Patch:
    name: str                   # the function in its module that applies the patch
    relies_on: dict[str, str]   # "module:qualified.name" ("module:" for a whole module) -> sha256 of its
    #                             source when the patch was measured
    check: Callable[[], None]   # applies the patch here and asserts it answers as the original did


def resolve(target: str):
    module_name, _, qualname = target.partition(":")
    found = importlib.import_module(module_name)  # the module, even where a package attribute of its name is a function
    for part in qualname.split(".") if qualname else []:  # "module:" is the module itself
        found = getattr(found, part)
    return found


def source_sha256(target: str) -> str:
    return hashlib.sha256(inspect.getsource(resolve(target)).encode()).hexdigest()


def _version(target: str) -> str:
    top = target.split(".", 1)[0].split(":", 1)[0]
    names = importlib.metadata.packages_distributions().get(top, [top])
    try:
        return f"{names[0]} {importlib.metadata.version(names[0])}"
    except importlib.metadata.PackageNotFoundError:
        return top


def drift(patches, where: str) -> list[str]:
    """One sentence per patch whose library changed under it; none when all still hold."""
    problems = []
    for patch in patches:
        changed = []
        for target, recorded in patch.relies_on.items():
            try:
                now = source_sha256(target)
            except (ImportError, AttributeError) as exc:
                changed.append(f"{target} is gone ({type(exc).__name__}: {exc})")
                continue
            if now != recorded:
                changed.append(f"{target} changed in {_version(target)} (source sha256 {now[:12]}, "
                               f"recorded {recorded[:12]})")
        if changed:
            problems.append(f"re-check the patch {where}:{patch.name}: {'; '.join(changed)}.")
            continue
        try:
            patch.check()
        except Exception as exc:  # any failure of the check means the same: the patch no longer fits
            problems.append(f"re-check the patch {where}:{patch.name}: patched, it no longer answers as the "
                            f"original did ({type(exc).__name__}: {exc}).")
    return problems


def load(spec: str) -> ModuleType:
    """A patches module by import name (chatbot.rasa_patches) or by path (superset/superset_patches.py,
    which is loaded by path as superset_config.py is: superset/ is not a package)."""
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        module_spec = importlib.util.spec_from_file_location(f"lakewatch_patches_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def main(argv: list[str]) -> int:
    hashes = "--hashes" in argv
    specs = [a for a in argv if a != "--hashes"]
    if not specs:
        print("usage: python -m lakewatch.patches [--hashes] MODULE_OR_PATH ...", file=sys.stderr)
        return 2
    problems = []
    for spec in specs:
        module = load(spec)
        if hashes:
            for patch in module.PATCHES:
                for target in patch.relies_on:
                    print(f"{patch.name}  {target}  {source_sha256(target)}")
            continue
        found = drift(module.PATCHES, spec)
        if not found:
            print(f"{spec}: {len(module.PATCHES)} patches still fit their libraries")
        problems += found
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
