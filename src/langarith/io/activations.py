"""Per-language activation statistics: the sufficient statistics of LAPE and the interventions.

Per (layer, neuron): the number of tokens seen, how many of them had activation > 0, the sum
and the sum of squares of the activation. All four are additive across shards, so statistics
of parts of a corpus merge exactly (counts) or to float precision (sums).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from langarith.core.conditions import LanguageTables
from langarith.io.atomic import atomic_path

SCHEMA = pa.schema(
    [
        ("layer", pa.int16()),
        ("neuron", pa.int32()),
        ("n_tokens", pa.int64()),
        ("n_active", pa.int64()),
        ("act_sum", pa.float64()),
        ("act_sq_sum", pa.float64()),
    ]
)


@dataclass
class ActivationStats:
    """Statistics of one language over ``n_tokens`` tokens; arrays are ``[layers, neurons]``."""

    n_tokens: int
    n_active: np.ndarray
    act_sum: np.ndarray
    act_sq_sum: np.ndarray
    metadata: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.n_active.shape)  # type: ignore[return-value]

    @property
    def p_active(self) -> np.ndarray:
        """P(activation > 0), the activation probability of LAPE."""
        return self.n_active / max(self.n_tokens, 1)

    @property
    def act_mean(self) -> np.ndarray:
        """Signed mean activation over all tokens (the μ of the additive intervention)."""
        return self.act_sum / max(self.n_tokens, 1)

    @property
    def act_std(self) -> np.ndarray:
        mean = self.act_mean
        return np.sqrt(np.maximum(self.act_sq_sum / max(self.n_tokens, 1) - mean**2, 0.0))

    @classmethod
    def zeros(cls, n_layers: int, width: int) -> ActivationStats:
        return cls(
            n_tokens=0,
            n_active=np.zeros((n_layers, width), dtype=np.int64),
            act_sum=np.zeros((n_layers, width), dtype=np.float64),
            act_sq_sum=np.zeros((n_layers, width), dtype=np.float64),
        )

    def merge(self, other: ActivationStats) -> ActivationStats:
        """The statistics of both token sets together."""
        if self.shape != other.shape:
            raise ValueError(f"cannot merge statistics of shapes {self.shape} and {other.shape}")
        return ActivationStats(
            n_tokens=self.n_tokens + other.n_tokens,
            n_active=self.n_active + other.n_active,
            act_sum=self.act_sum + other.act_sum,
            act_sq_sum=self.act_sq_sum + other.act_sq_sum,
            metadata=dict(self.metadata),
        )

    def to_table(self) -> pa.Table:
        n_layers, width = self.shape
        layer = np.repeat(np.arange(n_layers, dtype=np.int16), width)
        neuron = np.tile(np.arange(width, dtype=np.int32), n_layers)
        table = pa.Table.from_arrays(
            [
                pa.array(layer),
                pa.array(neuron),
                pa.array(np.full(n_layers * width, self.n_tokens, dtype=np.int64)),
                pa.array(self.n_active.reshape(-1).astype(np.int64)),
                pa.array(self.act_sum.reshape(-1).astype(np.float64)),
                pa.array(self.act_sq_sum.reshape(-1).astype(np.float64)),
            ],
            schema=SCHEMA,
        )
        meta = {b"langarith": json.dumps(self.metadata, sort_keys=True).encode()}
        return table.replace_schema_metadata(meta)

    def write(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            pq.write_table(self.to_table(), tmp, compression="zstd")

    @classmethod
    def read(cls, path: str | Path) -> ActivationStats:
        if not Path(path).is_file():
            raise ValueError(f"{path}: file not found")
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            raise ValueError(f"{path}: not a readable Parquet file ({err})") from None
        if table.schema.remove_metadata() != SCHEMA:
            raise ValueError(f"{str(path)!r} is not an activation statistics file (schema differs)")
        layer = table.column("layer").to_numpy()
        neuron = table.column("neuron").to_numpy()
        n_layers, width = int(layer.max()) + 1, int(neuron.max()) + 1
        if len(layer) != n_layers * width:
            raise ValueError(f"{str(path)!r} does not cover every (layer, neuron) exactly once")
        order = np.lexsort((neuron, layer))

        def column(name: str) -> np.ndarray:
            return table.column(name).to_numpy()[order].reshape(n_layers, width)

        raw = (table.schema.metadata or {}).get(b"langarith", b"{}")
        return cls(
            n_tokens=int(table.column("n_tokens")[0].as_py()),
            n_active=column("n_active"),
            act_sum=column("act_sum"),
            act_sq_sum=column("act_sq_sum"),
            metadata=json.loads(raw),
        )


def stack(stats: Sequence[ActivationStats]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n_active [K, L, I], n_tokens [K], act_mean [K, L, I])`` for K languages."""
    shapes = {s.shape for s in stats}
    if len(shapes) != 1:
        raise ValueError(f"activation statistics of different shapes: {sorted(shapes)}")
    n_active = np.stack([s.n_active for s in stats])
    n_tokens = np.array([s.n_tokens for s in stats], dtype=np.int64)
    act_mean = np.stack([s.act_mean for s in stats])
    return n_active, n_tokens, act_mean


def read_tables(languages: Sequence[str], paths: Sequence[str | Path]) -> LanguageTables:
    """The per-language ``act_mean`` and ``p_active`` tables of ``languages`` from their
    activation statistics files (same order)."""
    stats = {lang: ActivationStats.read(path) for lang, path in zip(languages, paths)}
    return LanguageTables(
        act_mean={lang: s.act_mean for lang, s in stats.items()},
        p_active={lang: s.p_active for lang, s in stats.items()},
    )
