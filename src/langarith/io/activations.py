"""Per-language activation statistics: the sufficient statistics of LAPE and the interventions.

Per (layer, neuron): the number of tokens seen, how many of them had activation > 0, the sum
and the sum of squares of the activation. All four are additive across shards, so statistics
of parts of a corpus merge exactly (counts) or to float precision (sums).

One file holds the statistics of every recorded site (:data:`langarith.core.plans.SITE_KINDS`),
told apart by the ``site`` column: ``mlp`` (the neurons, what LAPE selects from) and
``residual`` (the residual stream after each decoder layer; ``neuron`` is then the hidden
dimension), recorded in the same forward passes. ``ActivationStats.read(path)`` reads the
``mlp`` site; files written before the ``site`` column existed hold that site only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from langarith.core.conditions import LanguageTables
from langarith.core.plans import SITE_KINDS
from langarith.io.atomic import atomic_path

_COLUMNS = [
    ("layer", pa.int16()),
    ("neuron", pa.int32()),
    ("n_tokens", pa.int64()),
    ("n_active", pa.int64()),
    ("act_sum", pa.float64()),
    ("act_sq_sum", pa.float64()),
]
SCHEMA = pa.schema([("site", pa.string()), *_COLUMNS])
MLP_ONLY_SCHEMA = pa.schema(_COLUMNS)  # files without the site column: the mlp site only


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

    def to_table(self, site: str = "mlp") -> pa.Table:
        n_layers, width = self.shape
        layer = np.repeat(np.arange(n_layers, dtype=np.int16), width)
        neuron = np.tile(np.arange(width, dtype=np.int32), n_layers)
        table = pa.Table.from_arrays(
            [
                pa.array([site] * (n_layers * width), pa.string()),
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
        """Write these statistics as the file's only (``mlp``) site."""
        write_sites(path, {"mlp": self})

    @classmethod
    def read(cls, path: str | Path, site: str = "mlp") -> ActivationStats:
        """The statistics of ``site`` in the file at ``path``."""
        sites = read_sites(path)
        if site not in sites:
            raise ValueError(
                f"{path}: no {site!r} statistics (the file holds {', '.join(sites)}; "
                "record the activations again to add them)"
            )
        return sites[site]

    @classmethod
    def from_table(cls, table: pa.Table, path: str | Path) -> ActivationStats:
        """The statistics of a table of one site (``path`` names it in errors)."""
        if table.num_rows == 0:
            raise ValueError(f"{str(path)!r} holds no statistics")
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


def write_sites(path: str | Path, sites: Mapping[str, ActivationStats]) -> None:
    """Write the statistics of several sites (``{site: stats}``; the same tokens) to one file;
    the metadata is the first site's."""
    unknown = [site for site in sites if site not in SITE_KINDS]
    if unknown:
        raise ValueError(f"unknown site {unknown[0]!r}; expected one of {', '.join(SITE_KINDS)}")
    tables = [stats.to_table(site) for site, stats in sites.items()]
    table = pa.concat_tables(tables).replace_schema_metadata(tables[0].schema.metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_sites(path: str | Path) -> dict[str, ActivationStats]:
    """``{site: statistics}`` of every site in the file at ``path``."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: file not found")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from None
    schema = table.schema.remove_metadata()
    if schema == MLP_ONLY_SCHEMA:
        return {"mlp": ActivationStats.from_table(table, path)}
    if schema != SCHEMA:
        raise ValueError(f"{str(path)!r} is not an activation statistics file (schema differs)")
    column = table.column("site")
    sites: dict[str, ActivationStats] = {}
    for site in column.unique().to_pylist():
        sites[site] = ActivationStats.from_table(table.filter(pc.equal(column, site)), path)
    return sites


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
    """The per-language tables of ``languages`` from their activation statistics files (same
    order): ``act_mean`` and ``p_active`` of the neurons, and, when every file holds the
    residual site, ``residual_mean`` ``[layers, hidden]`` and ``residual_rms`` ``[layers]``
    (the root mean square norm of the residual stream, ``sqrt(E‖h‖²)``)."""
    sites = {lang: read_sites(path) for lang, path in zip(languages, paths)}
    for lang, path in zip(languages, paths):
        if "mlp" not in sites[lang]:
            raise ValueError(f"{path}: no 'mlp' statistics")
    stats = {lang: s["mlp"] for lang, s in sites.items()}
    residual = {lang: s["residual"] for lang, s in sites.items() if "residual" in s}
    complete = residual and len(residual) == len(sites)
    return LanguageTables(
        act_mean={lang: s.act_mean for lang, s in stats.items()},
        p_active={lang: s.p_active for lang, s in stats.items()},
        residual_mean={lang: r.act_mean for lang, r in residual.items()} if complete else None,
        residual_rms=(
            {
                lang: np.sqrt((r.act_sq_sum / max(r.n_tokens, 1)).sum(axis=1))
                for lang, r in residual.items()
            }
            if complete
            else None
        ),
    )
