"""Shards of a language's token stream, recorded by separate jobs and merged exactly.

``record.chunk_batches`` cuts the packed stream into chunks of ``chunk_tokens`` (the last may
be shorter) and those into batches of ``batch_size`` chunks. Shard ``k`` of ``n`` (1-based) is a
contiguous run of whole batches; the ``n`` shards are as equal as runs of ``batch_size`` chunks
allow, and when the stream has fewer such runs than shards, some shards are empty. Because the
boundaries fall between batches, every shard runs exactly the forward passes a single pass runs
on its part of the stream (the same rows in the same shapes), so the merged statistics of all
shards have the counts of a single pass and sums that differ only in the order of the float64
additions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from langarith.io.activations import ActivationStats, read_sites


def check_shard(shard: int, shards: int) -> None:
    if shards < 1:
        raise ValueError(f"the number of shards must be >= 1, got {shards}")
    if not 1 <= shard <= shards:
        raise ValueError(f"shard must be in 1..{shards}, got {shard}")


def max_shards(n_tokens: int, chunk_tokens: int, batch_size: int) -> int:
    """The most shards ``n_tokens`` tokens make with none empty: one per ``batch_size`` chunks."""
    if chunk_tokens < 1 or batch_size < 1:
        raise ValueError(f"chunk_tokens and batch_size must be >= 1: {chunk_tokens}, {batch_size}")
    return -(-n_tokens // (chunk_tokens * batch_size))


def shard_bounds(
    n_tokens: int, chunk_tokens: int, batch_size: int, shard: int, shards: int
) -> tuple[int, int]:
    """``(start, stop)``: the token range of shard ``shard`` of ``shards`` (1-based).

    The ranges of shards 1..n are contiguous, in order, and cover ``[0, n_tokens)``; every
    ``start`` is a multiple of ``chunk_tokens * batch_size``.
    """
    check_shard(shard, shards)
    runs = max_shards(n_tokens, chunk_tokens, batch_size)  # runs of batch_size chunks
    first, last = (shard - 1) * runs // shards, shard * runs // shards
    step = chunk_tokens * batch_size
    return first * step, min(last * step, n_tokens)


def merge_shards(paths: Sequence[str | Path]) -> dict[str, ActivationStats]:
    """The statistics of shards 1..n of one language, read from ``paths`` (in any order), per
    site (``{site: statistics}``; every shard must hold the same sites).

    Each file's metadata must name its ``shard`` and the same ``shards`` = n, every shard must
    be present once, and the rest of the metadata (model, language, recording settings) must
    agree: shard files of different runs are never mixed. The result's metadata is the shared
    metadata (``shards`` included, ``shard`` dropped).
    """
    if not paths:
        raise ValueError("no shard files to merge")
    by_shard: dict[int, tuple[str, dict[str, ActivationStats]]] = {}
    common: dict | None = None
    for path in paths:
        sites = read_sites(path)
        meta = dict(next(iter(sites.values())).metadata)
        shard, shards = meta.pop("shard", None), meta.get("shards")
        if not isinstance(shard, int) or not isinstance(shards, int):
            raise ValueError(f"{str(path)!r} is not a shard file (no shard/shards in its metadata)")
        if shards != len(paths):
            raise ValueError(f"{str(path)!r} is shard {shard} of {shards}, not of {len(paths)}")
        if shard in by_shard:
            raise ValueError(f"{str(path)!r} and {by_shard[shard][0]!r} are both shard {shard}")
        if common is None:
            common = meta
        elif meta != common:
            first = by_shard[min(by_shard)][0]
            raise ValueError(f"{str(path)!r} was recorded with other settings than {first!r}")
        if by_shard and set(sites) != set(next(iter(by_shard.values()))[1]):
            first = by_shard[min(by_shard)][0]
            raise ValueError(f"{str(path)!r} holds other sites than {first!r}")
        by_shard[shard] = (str(path), sites)
    missing = sorted(set(range(1, len(paths) + 1)) - set(by_shard))
    if missing:
        raise ValueError(f"shard {missing[0]} of {len(paths)} is missing")
    merged = dict(by_shard[1][1])
    for shard in range(2, len(paths) + 1):
        for site, stats in by_shard[shard][1].items():
            merged[site] = merged[site].merge(stats)
    for stats in merged.values():
        stats.metadata = dict(common or {})
    return merged
