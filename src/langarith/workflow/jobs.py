"""What every workflow job does first: log to its log file, take its GPUs, fix threads and seeds;
and the steering files of a steered job's inputs."""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from langarith.workflow.gpu import GpuClaim, claim_gpus

if TYPE_CHECKING:
    from langarith.experiments.steered_job import SteeringFiles


@contextmanager
def job_logging(
    log_path: str | None, threads: int | None = None, gpus: int = 0
) -> Iterator[logging.Logger]:
    """Send stdout, stderr (tqdm progress included) and logging to ``log_path`` for the block.

    ``gpus``: how many GPUs the rule asked for (its ``gpu`` resource). They are claimed before
    torch is touched (see :mod:`langarith.workflow.gpu`) and released when the block ends.
    """
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
    claim: GpuClaim | None = None
    try:
        claim = claim_gpus(int(gpus or 0), logger=logger)  # before CUDA can initialise
        seed_everything(0)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        yield logger
    except Exception:
        logger.exception("job failed")
        raise
    finally:
        if claim is not None:
            claim.release()
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


def steering_files(inputs: Any) -> SteeringFiles:
    """The steering inputs a job's rule has (``snakemake.input``; names ``neurons``,
    ``summary``, ``activations``, ``calibration``, ``layer_sweep``, as ``workflow/rules``
    declares them), for ``langarith.experiments.steered_job.read_steered_job``."""
    from langarith.experiments.steered_job import SteeringFiles

    return SteeringFiles(
        neurons=inputs.get("neurons"),
        summary=inputs.get("summary"),
        activations=tuple(inputs.get("activations", [])),
        calibration=inputs.get("calibration"),
        layer_sweep=inputs.get("layer_sweep"),
    )
