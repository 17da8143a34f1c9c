"""A local Hugging Face Hub for the tests: an HTTP server on 127.0.0.1 that speaks enough of the
Hub API for ``huggingface_hub`` (``snapshot_download``, ``hf_hub_download``, ``HfFileSystem``)
and ``datasets.load_dataset(..., streaming=True)``.

What it serves, as the real Hub does (huggingface_hub 1.x / 2.x, datasets 4.x / 5.x clients):

* ``GET /api/{models,datasets}/<id>[/revision/<rev>]``: repository info (``sha``, ``siblings``,
  ``gated``, ``cardData``: the YAML header of the revision's ``README.md``, as the Hub parses it);
* ``GET /api/{models,datasets}/<id>/auth-check``: 200 when the token in use may read the
  repository, the errors below otherwise;
* ``GET /api/{models,datasets}/<id>/tree/<rev>[/<path>]?recursive=``: the tree listing, LFS
  files with their ``lfs`` block;
* ``POST /api/{models,datasets}/<id>/paths-info/<rev>``: info of given paths;
* ``HEAD|GET /[datasets/]<id>/resolve/<rev>/<path>``: a file, with ``ETag``, ``X-Repo-Commit``
  and ``Content-Length``; an LFS file (safetensors, parquet) answers with a redirect to a
  content-addressed ``/cdn/<sha256>`` URL, with ``X-Linked-Etag`` and ``X-Linked-Size``, as the
  Hub's CDN redirect does; ``Range`` requests are answered with 206.

Errors carry the Hub's ``X-Error-Code`` header, from which the client raises its typed errors:
``RepoNotFound`` (401 without a token, 404 with one), ``RevisionNotFound``, ``EntryNotFound``
and ``GatedRepo`` (401 without a token, 403 with a token that was not granted access).

Every request is recorded in :attr:`LocalHub.requests` (method, path), so a test can say what
was downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".parquet", ".bin", ".pth", ".pt", ".arrow")
GOOD_TOKEN = "hf_localhub_granted"  # a token that was granted access to every gated repository
OTHER_TOKEN = "hf_localhub_not_granted"  # a valid token without access to gated repositories


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


@dataclass
class Repo:
    repo_type: str  # "model" or "dataset"
    repo_id: str
    gated: bool = False
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> path -> bytes
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> sha
    card_data: dict | None = None

    def commit(self, files: dict[str, bytes], ref: str = "main") -> str:
        """Add a commit holding ``files`` (the whole tree) and point ``ref`` at it."""
        digest = hashlib.sha1()
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha1(files[path]).digest())
        digest.update(f"{self.repo_type}/{self.repo_id}/{len(self.commits)}".encode())
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        return None


class LocalHub:
    """The repositories and the server; ``url`` is its endpoint (``HF_ENDPOINT``)."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.blobs: dict[str, bytes] = {}  # sha256 -> content, for the CDN route
        self.blob_paths: dict[str, set[tuple[str, str]]] = {}  # sha256 -> (repo id, path)
        self.fetched: list[tuple[str, str]] = []  # (repo id, path) of each GET of a file
        self._servers: list[ThreadingHTTPServer] = []  # the hub, then its "CDN" (LFS blobs)

    # -- repositories ----------------------------------------------------------------------

    def add_repo(
        self,
        repo_type: str,
        repo_id: str,
        files: dict[str, bytes],
        gated: bool = False,
        card_data: dict | None = None,
    ) -> Repo:
        repo = Repo(repo_type, repo_id, gated=gated, card_data=card_data)
        repo.commit(files)
        self.repos[(repo_type, repo_id)] = repo
        self._index(repo_id, files)
        return repo

    def add_commit(self, repo_type: str, repo_id: str, files: dict[str, bytes], ref: str) -> str:
        """A new commit of ``repo_id`` (its whole tree) that ``ref`` (a branch or tag) names."""
        self._index(repo_id, files)
        return self.repos[(repo_type, repo_id)].commit(files, ref)

    def _index(self, repo_id: str, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            if is_lfs(path):
                sha256 = hashlib.sha256(data).hexdigest()
                self.blobs[sha256] = data
                self.blob_paths.setdefault(sha256, set()).add((repo_id, path))

    def downloads(self, repo_id: str) -> set[str]:
        """The paths of the files of ``repo_id`` whose content was fetched (GET, ranges too)."""
        return {path for repo, path in self.fetched if repo == repo_id}

    # -- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint, ``http://127.0.0.1:<port>``."""
        return self._origin(0)

    @property
    def cdn_url(self) -> str:
        """Where LFS files are redirected to: another origin (port), as the Hub's CDN is, so
        that the client drops its token and reads the metadata from the redirect."""
        return self._origin(1)

    def _origin(self, i: int) -> str:
        assert self._servers, "the hub is not started"
        host, port = self._servers[i].server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        hub = self

        class Handler(_Handler):
            local_hub = hub

        for _ in range(2):
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
API = re.compile(
    rf"^/api/(?P<kind>models|datasets)/{_REPO}"
    r"(?:/(?P<op>revision|tree|paths-info)/(?P<rev>[^/]+)(?:/(?P<path>.*))?"
    r"|/(?P<check>auth-check))?$"
)
RESOLVE = re.compile(rf"^/(?:(?P<kind>datasets)/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
CDN = re.compile(r"^/cdn/(?P<sha256>[0-9a-f]{64})$")


class _Error(Exception):
    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    local_hub: LocalHub

    def log_message(self, format, *args):  # noqa: A002 - quiet: the tests read hub.requests
        pass

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.local_hub.requests.append((method, url.path))
        body = b""
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            if match := CDN.match(url.path):
                return self._cdn(method, match["sha256"])
            if match := RESOLVE.match(url.path):
                kind = "dataset" if match["kind"] else "model"
                return self._resolve(method, kind, match)
            if match := API.match(url.path):
                kind = match["kind"][:-1]
                return self._api(method, kind, match, parse_qs(url.query), body)
            raise _Error(404, None, f"no route for {method} {url.path}")
        except _Error as err:
            self._error(method, err)

    # -- helpers ---------------------------------------------------------------------------

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth.removeprefix("Bearer ").strip() or None

    def _repo(self, kind: str, repo_id: str) -> Repo:
        repo = self.local_hub.repos.get((kind, repo_id))
        if repo is None:
            # as the Hub: 401 when anonymous (it might be private), 404 when authenticated
            status = 404 if self._token() else 401
            raise _Error(status, "RepoNotFound", "Repository not found")
        return repo

    def _commit(self, repo: Repo, revision: str) -> str:
        sha = repo.resolve(unquote(revision))
        if sha is None:
            raise _Error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
        return sha

    def _check_access(self, repo: Repo) -> None:
        if not repo.gated or self._token() == GOOD_TOKEN:
            return
        noun = "model" if repo.repo_type == "model" else "dataset"
        page = repo.repo_id if repo.repo_type == "model" else f"datasets/{repo.repo_id}"
        if self._token() is None:
            raise _Error(
                401,
                "GatedRepo",
                f"Access to {noun} {repo.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
            )
        raise _Error(
            403,
            "GatedRepo",
            f"Access to {noun} {repo.repo_id} is restricted and you are not in the authorized "
            f"list. Visit {self.local_hub.url}/{page} to ask for access.",
        )

    def _send(self, method: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _json(self, method: str, payload, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(method, 200, body, {"Content-Type": "application/json", **(headers or {})})

    def _error(self, method: str, err: _Error) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.commit:
            headers["X-Repo-Commit"] = err.commit
        self._send(method, err.status, json.dumps({"error": err.message}).encode(), headers)

    # -- routes ----------------------------------------------------------------------------

    def _api(self, method, kind, match, query, body) -> None:
        repo = self._repo(kind, match["repo_id"])
        if match["check"]:
            self._check_access(repo)
            return self._json(method, {"access": "granted"})
        op = match["op"]
        sha = self._commit(repo, match["rev"] or "main")
        files = repo.commits[sha]
        if op in (None, "revision"):
            return self._json(method, self._info(repo, sha, files))
        if op == "tree":
            prefix = unquote(match["path"] or "").strip("/")
            recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
            entries = _tree(files, prefix, recursive)
            if prefix and not entries and prefix not in files:
                raise _Error(404, "EntryNotFound", f"{prefix} does not exist", commit=sha)
            return self._json(method, entries)
        if op == "paths-info":
            form = parse_qs(body.decode())
            if not form and body:
                form = json.loads(body)
            paths = form.get("paths") or []
            entries = [e for e in _tree(files, "", True, dirs=True) if e["path"] in paths]
            return self._json(method, entries)
        raise _Error(404, None, f"no api route {op}")

    def _info(self, repo: Repo, sha: str, files: dict[str, bytes]) -> dict:
        info = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": sha,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": path} for path in sorted(files)],
        }
        card_data = repo.card_data if repo.card_data is not None else _card_data(files)
        if card_data is not None:
            info["cardData"] = card_data
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info

    def _resolve(self, method: str, kind: str, match) -> None:
        repo = self._repo(kind, match["repo_id"])
        sha = self._commit(repo, match["rev"])
        path = unquote(match["path"])
        self._check_access(repo)
        files = repo.commits[sha]
        if path not in files:
            raise _Error(404, "EntryNotFound", f"{path} does not exist", commit=sha)
        data = files[path]
        if method == "GET" and not is_lfs(path):
            self.local_hub.fetched.append((repo.repo_id, path))
        common = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if is_lfs(path):
            sha256 = hashlib.sha256(data).hexdigest()
            location = f"{self.local_hub.cdn_url}/cdn/{sha256}"
            headers = {
                **common,
                "Location": location,
                "ETag": f'"{git_blob_sha1(data)}"',
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(data)),
                "Content-Length": "0",
            }
            return self._send(method, 302, b"", headers)
        return self._content(method, data, {**common, "ETag": f'"{git_blob_sha1(data)}"'})

    def _cdn(self, method: str, sha256: str) -> None:
        data = self.local_hub.blobs.get(sha256)
        if data is None:
            raise _Error(404, None, "no such blob")
        if method == "GET":
            self.local_hub.fetched.extend(sorted(self.local_hub.blob_paths[sha256]))
        self._content(method, data, {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"})

    def _content(self, method: str, data: bytes, headers: dict[str, str]) -> None:
        headers = {"Content-Type": "application/octet-stream", **headers}
        wanted = self.headers.get("Range")
        if wanted and (m := re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())):
            start_s, end_s = m.groups()
            if start_s == "":
                start, end = max(len(data) - int(end_s), 0), len(data) - 1
            else:
                start = int(start_s)
                end = min(int(end_s), len(data) - 1) if end_s else len(data) - 1
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return self._send(method, 416, b"", headers)
            part = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(method, 206, part, headers)
        self._send(method, 200, data, headers)


def _card_data(files: dict[str, bytes]) -> dict | None:
    """The YAML header of ``README.md`` (between the first two ``---`` lines), if any."""
    import yaml

    text = files.get("README.md", b"").decode("utf-8", "replace")
    if not text.startswith("---\n"):
        return None
    header = text[4:].split("\n---", 1)[0]
    data = yaml.safe_load(header)
    return data if isinstance(data, dict) else None


def _tree(files: dict[str, bytes], prefix: str, recursive: bool, dirs: bool = True) -> list[dict]:
    """Tree entries under ``prefix`` (files and folders), as the Hub lists them."""
    out: dict[str, dict] = {}
    base = f"{prefix}/" if prefix else ""
    for path, data in sorted(files.items()):
        if not path.startswith(base):
            continue
        rest = path[len(base) :].split("/")
        # folders on the way
        for depth in range(1, len(rest)):
            if not recursive and depth > 1:
                break
            folder = base + "/".join(rest[:depth])
            if dirs and folder not in out:
                oid = hashlib.sha1(folder.encode()).hexdigest()
                out[folder] = {"type": "directory", "oid": oid, "size": 0, "path": folder}
        if not recursive and len(rest) > 1:
            continue
        entry = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        if is_lfs(path):
            sha256 = hashlib.sha256(data).hexdigest()
            entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": 134}
        out[path] = entry
    return list(out.values())
