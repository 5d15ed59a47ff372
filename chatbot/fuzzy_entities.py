"""A Rasa entity extractor for misspelt symbols and asset classes ("crytpo", "nvdia", "APPL").

The lookup tables (data/nlu/entities.yml) match exact spellings only, and a dropped word makes a
narrower question a broader one: "anomlies in crytpo today?" was answered for all symbols. This
component runs after RegexEntityExtractor and matches each word no entity covers to the lookup
words within one edit (two for words of eight letters or more; a swap of neighbours is one edit),
never an English word nor a word of the training examples ("other" is not "ether", "found" is
not "pound"): training reads a word list (Debian's wamerican) and keeps the English words within
reach of a lookup word, so the trained model needs no word list to serve. One closest meaning
gives an entity whose value is the lookup word, which EntitySynonymMapper then maps like any
other; several give an entity with `candidates`, which the bot asks back about. The action
server says what a fuzzy match was read as (chatbot/answers/entities.py: FUZZY).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import dump_obj_as_json_to_file, read_json_file

from chatbot.training import WORD_LIST

FILE = "fuzzy_words.json"
_WORD = re.compile(r"[A-Za-z][\w/:.-]*[A-Za-z0-9]")


def edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    neighbouring letters each count one."""
    previous2, previous = [], list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            row.append(cost)
        previous2, previous = previous, row
    return previous[-1]


def allowed_edits(word: str) -> int:
    return 0 if len(word) < 4 else 1 if len(word) < 8 else 2


def closest(word: str, lookups: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    """The (entity, lookup word, meaning) nearest to `word` within its allowed edits."""
    limit = allowed_edits(word)
    if not limit:
        return []
    scored = [(edits(word, w), kind, w, meaning) for kind, words in lookups.items() for w, meaning in words.items()
              if abs(len(w) - len(word)) <= limit]
    best = min((d for d, *_ in scored), default=limit + 1)
    return [(kind, w, meaning) for d, kind, w, meaning in scored if d == best <= limit]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _one_edit(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in splits if b} | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in _LETTERS} | {a + c + b for a, b in splits for c in _LETTERS})


def english_neighbours(words: set[str], dictionary: Path) -> set[str]:
    """The English words (of `dictionary`, one per line) within a lookup word's allowed edits."""
    if not dictionary.is_file():
        raise FileNotFoundError(f"training the bot needs an English word list at {dictionary}, to tell misspelt "
                                "symbols from ordinary words (Debian: apt-get install wamerican)")
    english = {line.strip().lower() for line in dictionary.read_text(encoding="utf-8", errors="ignore").splitlines()}
    near: set[str] = set()
    for word in words:
        reach = _one_edit(word) if allowed_edits(word) else set()
        if allowed_edits(word) > 1:
            reach = reach.union(*(_one_edit(w) for w in reach))
        near |= reach & english
    plurals = {w + "s" for w in words} | {w[:-1] for w in words if w.endswith("s")}  # "bitcoins" means bitcoin
    return near - plurals


def _inside(m: re.Match, entities: list[dict]) -> bool:
    return any(e.get("start", m.end()) < m.end() and m.start() < e.get("end", m.start()) for e in entities)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class FuzzyEntityExtractor(GraphComponent, EntityExtractorMixin):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"entities": ["symbol", "asset_class"], "dictionary": WORD_LIST}

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 lookups: dict[str, dict[str, str]] | None = None, vocabulary: set[str] | None = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage, self._resource = model_storage, resource
        self.lookups = lookups or {}
        self.vocabulary = vocabulary or set()

    @classmethod
    def create(cls, config, model_storage, resource, execution_context: ExecutionContext) -> FuzzyEntityExtractor:
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config, model_storage, resource, execution_context, **kwargs) -> FuzzyEntityExtractor:
        with model_storage.read_from(resource) as path:
            saved = read_json_file(path / FILE)
        return cls(config, model_storage, resource, saved["lookups"], set(saved["vocabulary"]))

    def train(self, training_data: TrainingData) -> Resource:
        synonyms = {k.lower(): v for k, v in training_data.entity_synonyms.items()}
        self.lookups = {table["name"]: {str(w).lower(): synonyms.get(str(w).lower(), str(w))
                                        for w in table["elements"]}
                        for table in training_data.lookup_tables if table["name"] in self._config["entities"]}
        self.vocabulary = {m.group().lower() for example in training_data.intent_examples
                           for m in _WORD.finditer(example.get(TEXT) or "")
                           if not _inside(m, example.get(ENTITIES) or [])}  # misspelt examples are entities
        lookup_words = {w for words in self.lookups.values() for w in words}
        self.vocabulary |= english_neighbours(lookup_words, Path(self._config["dictionary"])) - lookup_words
        with self._storage.write_to(self._resource) as path:
            dump_obj_as_json_to_file(path / FILE, {"lookups": self.lookups, "vocabulary": sorted(self.vocabulary)})
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            found = self.add_extractor_name(self._extract(message.get(TEXT) or "", message.get(ENTITIES, [])))
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages

    def _extract(self, text: str, known: list[dict]) -> list[dict]:
        found = []
        for m in _WORD.finditer(text):
            word = m.group().lower()
            if word in self.vocabulary or _inside(m, known):
                continue
            matches = closest(word, self.lookups)
            if not matches:
                continue
            meanings = sorted({meaning for _, _, meaning in matches})
            entity = {"entity": matches[0][0], "start": m.start(), "end": m.end(), "value": matches[0][1]}
            if len(meanings) > 1 or len({kind for kind, _, _ in matches}) > 1:
                entity.update(value=m.group(), candidates=meanings)
            found.append(entity)
        return found
