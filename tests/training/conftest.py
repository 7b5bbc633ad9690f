"""Fixtures for training tests: a small prepared data directory (train.jsonl / val.jsonl)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

SUBJECTS = ["river", "mountain", "city", "forest", "lake", "desert", "island", "bridge"]
FACTS = ["is old", "is very large", "lies to the north", "was built long ago", "has many birds"]


def make_record(i: int, rng: random.Random) -> dict[str, Any]:
    """A prepare_data-shaped record with a Background of 1-6 sentences and two turns."""
    s, f = rng.choice(SUBJECTS), rng.choice(FACTS)
    filler = " ".join(
        f"The {rng.choice(SUBJECTS)} {rng.choice(FACTS)}." for _ in range(rng.randint(0, 5))
    )
    return {
        "id": f"r{i}",
        "background": f"{filler} The {s} {f}.".strip(),
        "turns": [
            {"role": "human", "text": f"What about the {s}?"},
            {"role": "bot", "text": f"The {s} {f}."},
        ],
        "source_line": i + 1,
    }


def write_data(directory: Path, n_train: int = 32, n_val: int = 8, seed: int = 0) -> Path:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("val", n_val)):
        lines = [json.dumps(make_record(i, rng), ensure_ascii=False) for i in range(n)]
        (directory / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def train_data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_data(tmp_path_factory.mktemp("train-data")))
