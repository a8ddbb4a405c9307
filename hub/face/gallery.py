"""Enrolled faces: SQLite store of embeddings per person, and the 1:N matcher.

Photos are not stored unless ``store_photos`` is set. Deleting a person deletes
their embeddings (foreign key with ON DELETE CASCADE). The matcher keeps one
float32 matrix per list (residents, watch list) and scores a query with a
single matrix-vector product.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hub.face.embed import EMBEDDING_DIM
from hub.face.errors import GalleryError

LISTS = ("resident", "watch")

SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS person (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    list TEXT NOT NULL CHECK (list IN ('resident', 'watch')),
    entrances TEXT NOT NULL DEFAULT '[]',
    schedule TEXT NOT NULL DEFAULT '[]',
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embedding (
    id INTEGER PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES person(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    model_version TEXT NOT NULL,
    quality TEXT NOT NULL DEFAULT '{}',
    photo BLOB,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS embedding_person ON embedding(person_id);
"""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    list: str
    entrances: list = field(default_factory=list)
    schedule: list = field(default_factory=list)
    embeddings: int = 0


@dataclass(frozen=True)
class Match:
    person_id: str | None
    list: str
    score: float


class Matcher:
    """Vectorised cosine search over unit vectors; best embedding wins."""

    def __init__(self, vectors: np.ndarray, owners: list[str]):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        self.owners = np.asarray(owners, dtype=object)

    def __len__(self) -> int:
        return len(self.owners)

    def best(self, query: np.ndarray) -> tuple[str | None, float]:
        if not len(self.owners):
            return None, -1.0
        scores = self.vectors @ query.astype(np.float32, copy=False)
        i = int(np.argmax(scores))
        return str(self.owners[i]), float(scores[i])


class Gallery:
    def __init__(self, path: Path | str, store_photos: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.store_photos = store_photos
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.executescript(SCHEMA)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise GalleryError(f"cannot open face gallery {self.path}: {exc}") from exc
        self._matchers: dict[str, Matcher] = {}
        self._reload()

    def close(self) -> None:
        self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise GalleryError(f"face gallery {self.path}: {exc}") from exc

    def _reload(self) -> None:
        rows = self._exec("SELECT p.list, e.person_id, e.vector FROM embedding e JOIN person p ON p.id = e.person_id ORDER BY e.id")
        matchers = {}
        for name in LISTS:
            picked = [(pid, vec) for lst, pid, vec in rows if lst == name]
            vectors = np.frombuffer(b"".join(v for _, v in picked), dtype=np.float32)
            matchers[name] = Matcher(vectors, [pid for pid, _ in picked])
        self._matchers = matchers   # swapped whole, so a reader never sees a half-built matcher

    def upsert_person(self, person_id: str, name: str, list_: str = "resident", entrances=(), schedule=(),
                      now: float = 0.0, replace_embeddings: bool = False) -> None:
        if list_ not in LISTS:
            raise GalleryError(f"list must be one of {LISTS}, not {list_!r}")
        self._exec(
            "INSERT INTO person (id, name, list, entrances, schedule, created_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, list=excluded.list, "
            "entrances=excluded.entrances, schedule=excluded.schedule",
            (person_id, name, list_, json.dumps(list(entrances)), json.dumps(list(schedule)), now))
        if replace_embeddings:
            self._exec("DELETE FROM embedding WHERE person_id = ?", (person_id,))
        self._reload()

    def add_embeddings(self, person_id: str, vectors: np.ndarray, model_version: str, now: float,
                       qualities=None, photos=None) -> int:
        if self.get(person_id) is None:
            raise GalleryError(f"unknown person {person_id!r}")
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        qualities = qualities or [{}] * len(vectors)
        photos = photos if (photos and self.store_photos) else [None] * len(vectors)
        for vec, quality, photo in zip(vectors, qualities, photos):
            self._exec("INSERT INTO embedding (person_id, vector, model_version, quality, photo, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (person_id, vec.tobytes(), model_version, json.dumps(quality), photo, now))
        self._reload()
        return len(vectors)

    def delete(self, person_id: str) -> bool:
        gone = self._exec("DELETE FROM person WHERE id = ? RETURNING id", (person_id,))
        self._reload()
        return bool(gone)

    def get(self, person_id: str) -> Person | None:
        rows = self._exec("SELECT id, name, list, entrances, schedule, "
                          "(SELECT COUNT(*) FROM embedding e WHERE e.person_id = p.id) FROM person p WHERE id = ?",
                          (person_id,))
        return self._person(rows[0]) if rows else None

    def list(self, list_: str | None = None) -> list[Person]:
        rows = self._exec("SELECT id, name, list, entrances, schedule, "
                          "(SELECT COUNT(*) FROM embedding e WHERE e.person_id = p.id) FROM person p ORDER BY id")
        return [self._person(r) for r in rows if list_ is None or r[2] == list_]

    def embedding_count(self, person_id: str) -> int:
        return int(self._exec("SELECT COUNT(*) FROM embedding WHERE person_id = ?", (person_id,))[0][0])

    @staticmethod
    def _person(row) -> Person:
        return Person(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), int(row[5]))

    def match(self, query: np.ndarray) -> dict[str, Match]:
        """Best match on each list for one unit query vector."""
        matchers = self._matchers
        result = {}
        for name in LISTS:
            person_id, score = matchers[name].best(query)
            result[name] = Match(person_id, name, score)
        return result
