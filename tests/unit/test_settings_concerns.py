"""Settings are split by concern (lakewatch/settings/, issue 16) and composed into one flat
`Settings`. Composing by inheritance lets a name declared by two concerns silently shadow the
other, and a concern left out of `Settings` silently lose its fields: these tests catch both."""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections import Counter

from lakewatch import settings

CONCERNS = [base for base in settings.Settings.__mro__[1:] if dataclasses.is_dataclass(base)]


def declared_names(concern: type) -> set[str]:
    """The fields, properties and methods a concern declares itself."""
    return {name for name in vars(concern) if not name.startswith("__")} | {
        f.name for f in dataclasses.fields(concern)}


def test_no_two_concerns_declare_the_same_name():
    counts = Counter(name for concern in CONCERNS for name in declared_names(concern))
    twice = {name: [c.__name__ for c in CONCERNS if name in declared_names(c)] for name, n in counts.items() if n > 1}
    assert twice == {}


def test_concerns_are_separate_not_built_on_each_other():
    """Each concern's fields are its own, so the test above sees every declaration."""
    assert all(concern.__bases__ == (object,) for concern in CONCERNS)


def test_settings_is_only_its_concerns():
    """A field or property of Settings itself would belong to no concern."""
    assert [name for name in vars(settings.Settings) if not name.startswith("__")] == []
    assert vars(settings.Settings).get("__annotations__", {}) == {}
    assert {f.name for f in dataclasses.fields(settings.Settings)} == {
        f.name for concern in CONCERNS for f in dataclasses.fields(concern)}


def test_every_concern_module_is_part_of_settings():
    defined = set()
    for module in pkgutil.iter_modules(settings.__path__):
        loaded = importlib.import_module(f"{settings.__name__}.{module.name}")
        assert loaded.__doc__, f"{module.name}.py needs a docstring saying why the concern exists"
        defined |= {obj for obj in vars(loaded).values()
                    if dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == loaded.__name__}
    assert defined - {settings.Topics, settings.Settings} == set(CONCERNS)


def test_every_concern_is_frozen():
    assert all(concern.__dataclass_params__.frozen for concern in CONCERNS)
