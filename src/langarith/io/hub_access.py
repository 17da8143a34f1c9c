"""Whether a Hugging Face hub repository can be read, asked before any job needs it: the
repository exists, has the revision, the token in use may read it (gated repositories), and a
dataset has the configs the run will ask for.

Cheap: one ``repo_info`` request per repository (its card data lists a dataset's configs) and,
for a gated one, one ``auth_check``; nothing is downloaded. With ``HF_HUB_OFFLINE=1`` the hub is
never asked: a model is looked for in the local cache instead (a dataset cannot be, cheaply).
Every problem is the one line of :func:`langarith.io.hub_errors.hub_error_line`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Seconds to wait for the hub's answer to one request before calling it unreachable.
TIMEOUT = 10.0


class HubUnreachable(Exception):
    """The hub gave no answer about the repository (no network, a proxy, a timeout, a server
    error): nothing is known either way."""


def _definite(err: BaseException) -> bool:
    """The hub answered: no such repository or revision, or no access to a gated one."""
    from huggingface_hub import errors as hub

    from langarith.io.hub_errors import _chain

    answers = hub.GatedRepoError | hub.RevisionNotFoundError | hub.RepositoryNotFoundError
    return any(isinstance(e, answers) for e in _chain(err))


def _no_answer(err: BaseException) -> bool:
    """No answer: a transport error (no network, DNS, proxy, timeout: ``OSError`` or the HTTP
    client's ``TransportError``, whichever httpx package huggingface_hub uses) or a server
    error."""
    from huggingface_hub.errors import HfHubHTTPError

    from langarith.io.hub_errors import _chain

    def transport(e: BaseException) -> bool:
        return any(cls.__name__ == "TransportError" for cls in type(e).__mro__)

    return any(isinstance(e, OSError | HfHubHTTPError) or transport(e) for e in _chain(err))


def card_configs(card_data: object) -> list[str] | None:
    """The config names a dataset card's ``configs`` list declares (``None``: it lists none, so
    the configs are not known without loading the dataset)."""
    if card_data is None:
        return None
    data = card_data.to_dict() if hasattr(card_data, "to_dict") else card_data
    configs = data.get("configs") if isinstance(data, Mapping) else None
    if not isinstance(configs, list):
        return None
    names = [c.get("config_name") for c in configs if isinstance(c, Mapping)]
    return [n for n in names if isinstance(n, str)] or None


@dataclass(frozen=True)
class Wanted:
    """A repository a run reads: ``kind`` (model or dataset), id, revision, the config key that
    names it (``setting``) and, for a dataset, ``{config name: language}`` it asks for."""

    kind: str
    repo_id: str
    revision: str | None
    setting: str
    configs: tuple[tuple[str, str], ...] = ()


def _missing_config_line(wanted: Wanted, config: str, lang: str, known: list[str]) -> str:
    shown = ", ".join(sorted(known)[:12])
    if len(known) > 12:
        shown += f", ... ({len(known)} in all)"
    return (
        f"the dataset {wanted.repo_id!r} has no config {config!r} "
        f"(language {lang!r}); its configs are {shown}"
    )


def problem(wanted: Wanted) -> str | None:
    """The one line saying why ``wanted`` cannot be read from the hub (without its setting, which
    the caller puts first), ``None`` if it can. ``HubUnreachable`` when the hub does not answer."""
    from huggingface_hub import HfApi

    from langarith.io.hub_errors import hub_error_line

    api = HfApi()
    try:
        info = api.repo_info(
            wanted.repo_id, repo_type=wanted.kind, revision=wanted.revision, timeout=TIMEOUT
        )
        if info.gated:
            api.auth_check(wanted.repo_id, repo_type=wanted.kind)
    except Exception as err:
        if not _definite(err):
            if not _no_answer(err):
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise HubUnreachable(first) from err
        line = hub_error_line(err, wanted.kind, wanted.repo_id, wanted.revision)
        if line is None:  # pragma: no cover - every definite answer has its line
            raise
        return line
    if wanted.configs:
        known = card_configs(getattr(info, "card_data", None))
        if known is not None:
            for config, lang in wanted.configs:
                if config not in known:
                    return _missing_config_line(wanted, config, lang, known)
    return None


def cached_model_problem(wanted: Wanted) -> str | None:
    """Offline: the one line saying ``wanted`` (a model) is not in the local cache, else None."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    from langarith.io.hub_errors import hub_error_line

    cached = try_to_load_from_cache(wanted.repo_id, "config.json", revision=wanted.revision)
    if isinstance(cached, str):
        return None
    err = LocalEntryNotFoundError(f"{wanted.repo_id} is not cached")
    return hub_error_line(err, wanted.kind, wanted.repo_id, wanted.revision)


def merge(wanted: Iterable[Wanted]) -> list[Wanted]:
    """One entry per (kind, repository, revision), the configs of all of them, first setting."""
    merged: dict[tuple, Wanted] = {}
    for w in wanted:
        key = (w.kind, w.repo_id, w.revision)
        if key in merged:
            old = merged[key]
            configs = tuple(dict.fromkeys(old.configs + w.configs))
            merged[key] = Wanted(old.kind, old.repo_id, old.revision, old.setting, configs)
        else:
            merged[key] = w
    return list(merged.values())
