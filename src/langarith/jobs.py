"""What every workflow job does first: log to its log file, fix threads and seeds."""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


@contextmanager
def job_logging(log_path: str | None, threads: int | None = None) -> Iterator[logging.Logger]:
    """Send stdout, stderr (tqdm progress included) and logging to ``log_path`` for the block."""
    stream = open(log_path, "w", buffering=1, encoding="utf-8") if log_path else None
    saved = sys.stdout, sys.stderr
    if stream:
        sys.stdout = sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logger = logging.getLogger("langarith")
    try:
        seed_everything(0)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        yield logger
    except Exception:
        logger.exception("job failed")
        raise
    finally:
        sys.stdout, sys.stderr = saved
        if stream:
            stream.close()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
