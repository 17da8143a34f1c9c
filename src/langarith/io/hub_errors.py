"""One line for a failed access to the Hugging Face hub: which repository, what went wrong, what
to do (accept a gated repository's terms and log in, fix an id or revision, go online).

``huggingface_hub`` and ``datasets`` raise many error types with multi-line messages written
for their own API; a job that fails on the hub should instead tell the user, in the job log and
in Snakemake's error, the one thing to change. :func:`hub_error_line` maps an exception (or one
in its cause chain) to such a line; it returns ``None`` for errors that are not about reaching a
hub repository, which the caller then re-raises unchanged.
"""

from __future__ import annotations

import os
import re

LOGIN = "log in on this machine with `hf auth login` (or export HF_TOKEN=<your token>)"


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _endpoint() -> str:
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _page(kind: str, repo_id: str) -> str:
    return f"{_endpoint()}/{'datasets/' if kind == 'dataset' else ''}{repo_id}"


def _cache() -> str:
    try:
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    except ImportError:  # pragma: no cover
        return "the Hugging Face cache"


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def hub_error_line(
    err: BaseException,
    kind: str,
    repo_id: str,
    revision: str | None = None,
    setting: str = "",
) -> str | None:
    """The one-line message for ``err`` raised while reading ``repo_id`` (``kind``: ``model``
    or ``dataset``) at ``revision``; ``setting`` names the config key that
    holds the id (``models.llama.source``, ``corpus``). ``None`` if ``err`` is of another kind."""
    from huggingface_hub import errors as hub

    name = f"{kind} {repo_id!r}"
    where = f" ({setting})" if setting else ""
    page = _page(kind, repo_id)
    offline_line = (
        f"the {name}{where} is not in the local Hugging Face cache ({_cache()}) and the hub "
        "cannot be reached (HF_HUB_OFFLINE=1, or no network): run once with network access "
        "(HF_HUB_OFFLINE unset), or point HF_HOME / HF_HUB_CACHE at a cache that holds it"
    )
    gated_line = (
        f"the {name}{where} is gated: accept its terms at {page} with your Hugging Face "
        f"account, then {LOGIN}"
    )
    denied_line = (
        f"the {name}{where} is gated and the token in use has no access to it: accept its "
        f"terms at {page} with the account of that token (or {LOGIN} with an account that has)"
    )
    missing_line = (
        f"the {name}{where} is not on the hub ({_endpoint()}): check the id; if it is a "
        f"private repository, {LOGIN}"
    )
    revision_line = (
        f"the {name}{where} has no revision {revision!r}: use a branch, tag or commit that "
        f"{page} lists, or none for the default branch"
    )
    for e in _chain(err):
        if isinstance(e, hub.GatedRepoError):
            return denied_line if _status(e) == 403 else gated_line
        if isinstance(e, hub.RevisionNotFoundError):
            return revision_line
        if isinstance(e, hub.RepositoryNotFoundError):
            return missing_line
        if isinstance(e, hub.OfflineModeIsEnabled | hub.LocalEntryNotFoundError):
            return offline_line
    text = str(err)
    type_name = type(err).__name__
    # datasets wraps the hub's errors in its own, with the gist in the message
    if type_name == "DatasetNotFoundError" or "doesn't exist on the Hub" in text:
        if "gated" in text:
            return denied_line if "ask for access" in text else gated_line
        if "Revision" in text:
            return revision_line
        return missing_line
    if match := re.search(r"BuilderConfig '([^']*)' not found\. Available: (\[.*\])", text):
        return f"the {name}{where} has no config {match[1]!r}; its configs are {match[2]}"
    if isinstance(err, ConnectionError) and "Couldn't reach" in text:
        return offline_line
    for e in _chain(err):
        if isinstance(e, hub.HfHubHTTPError):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return f"the hub failed on the {name}{where}: {first} ({page})"
    return None
