"""A small Hugging Face Hub-compatible HTTP server on loopback, for the push/load tests.

The real Hub cannot be reached from the test machines, so the tests run the real `huggingface_hub`,
`datasets` and `diffusers` clients against this server. It implements ONLY the subset of the Hub's
HTTP API that those clients use in the tests (huggingface_hub 2.4 with `HF_HUB_DISABLE_XET=1`):

- `POST /api/repos/create`, `POST /api/validate-yaml`, `GET /api/whoami-v2`
- `GET /api/{models,datasets,spaces}/{repo_id}[/revision/{rev}]`: repo info with `siblings`
- `POST /api/{type}s/{repo_id}/preupload/{rev}`: "lfs" upload mode for binary files (a NUL byte in
  the sample, like git's own test) and "regular" for text
- `POST /[{datasets,spaces}/]{repo_id}.git/info/lfs/objects/batch` (basic transfer only) and the
  `PUT /lfs-upload/{sha256}` URL it hands out; `datasets` needs LFS because it deletes its parquet
  shards after pre-uploading them, before the commit
- `POST /api/{type}s/{repo_id}/commit/{rev}`: NDJSON commit with base64 files, LFS files, deletions
- `GET /api/{type}s/{repo_id}/tree/{rev}[/{path}]` and `POST .../paths-info/{rev}`
- `HEAD`/`GET /[{datasets,spaces}/]{repo_id}/resolve/{rev}/{path}` with the `ETag`, `X-Repo-Commit`
  and `Content-Length` headers that `hf_hub_download` reads, and byte ranges for `HfFileSystem`.

Storage is in memory: each repo keeps its list of commits, each commit a full snapshot
`{path: _Blob}`; LFS objects live in one store keyed by sha256. Writes and private repos need the server's token
(`Authorization: Bearer ...`).
Two test knobs: `fail_next(...)` makes the next N matching requests answer an HTTP error (to test
retries), and `requests` records every `(method, path)` seen. It is written by hand because no
maintained library offers a local Hub; it is a test helper, not a Hub implementation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "hf_loopback_test_token"
USER = "tester"
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what `git hash-object` prints), used by the Hub as file oid/ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class _Blob:
    content: bytes
    lfs: bool  # stored through LFS: git holds a pointer file, the ETag is the content's sha256

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n".encode()
        )

    @property
    def oid(self) -> str:
        """What the client compares with its local file to skip unchanged uploads."""
        return self.sha256 if self.lfs else git_blob_oid(self.content)

    def tree_entry(self, path: str) -> dict:
        entry = {"type": "file", "path": path, "size": len(self.content)}
        if not self.lfs:
            return {**entry, "oid": git_blob_oid(self.content)}
        lfs = {"oid": self.sha256, "size": len(self.content), "pointerSize": len(self.pointer)}
        return {**entry, "oid": git_blob_oid(self.pointer), "lfs": lfs}


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    # (commit sha, snapshot {path: blob}, summary), oldest first
    commits: list[tuple[str, dict[str, _Blob], str]] = field(default_factory=list)

    def snapshot(self, revision: str) -> tuple[str, dict[str, _Blob]] | None:
        if revision == "main":
            sha, files, _ = self.commits[-1]
            return sha, files
        for sha, files, _ in self.commits:
            if sha == revision:
                return sha, files
        return None


@dataclass
class _Fault:
    remaining: int
    status: int
    path_contains: str
    method: str | None


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class HubServer:
    """The loopback Hub. Use as a context manager; `url` is the value for `HF_ENDPOINT`."""

    def __init__(self, token: str = TOKEN):
        self.token = token
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lfs_objects: dict[str, bytes] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def client_env(self, hf_home: str | os.PathLike, token: str | None = None) -> dict[str, str]:
        """Environment for a client subprocess: Hub at this server, online, no Xet, a fresh cache."""
        env = {key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE")}
        env.update(
            HF_ENDPOINT=self.url,
            HF_HUB_OFFLINE="0",
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_DATASETS_DISABLE_PROGRESS_BARS="1",
            HF_TOKEN=self.token if token is None else token,
            HF_HOME=str(hf_home),
        )
        return env

    def fail_next(self, count: int, *, status: int = 503, path_contains: str = "", method: str | None = None) -> None:
        """Answer the next `count` requests whose path contains `path_contains` with HTTP `status`."""
        with self._lock:
            self._faults.append(_Fault(count, status, path_contains, method))

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision (for assertions)."""
        with self._lock:
            snapshot = self.repos[(repo_type, repo_id)].snapshot(revision)[1]
        return {path: blob.content for path, blob in snapshot.items()}

    # ---- request handling (called from the handler threads) ----

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.path_contains in path and fault.method in (None, method):
                    fault.remaining -= 1
                    return fault
        return None

    def _authorized(self, headers) -> bool:
        return headers.get("Authorization", "") == f"Bearer {self.token}"

    def _repo(self, repo_type: str, repo_id: str, headers, write: bool = False) -> _Repo:
        repo = self.repos.get((repo_type, repo_id))
        if write and not self._authorized(headers):
            raise _HubError(401, "Invalid credentials in Authorization header")
        if repo is None or (repo.private and not self._authorized(headers)):
            # Like the Hub: a private repo looks missing to someone without access.
            raise _HubError(404 if repo is None else 401, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _snapshot(self, repo: _Repo, revision: str) -> tuple[str, dict[str, _Blob]]:
        found = repo.snapshot(revision)
        if found is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return found

    def create_repo(self, body: dict, headers) -> dict:
        if not self._authorized(headers):
            raise _HubError(401, "Invalid credentials in Authorization header")
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        url = f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                raise _HubError(409, "You already created this repo", extra={"url": url})
            repo = _Repo(repo_type, repo_id, body.get("visibility", "public") != "public", body.get("sdk"))
            repo.commits.append((_commit_sha(repo_id, 0, {}), {}, "initial commit"))
            self.repos[(repo_type, repo_id)] = repo
        return {"url": url, "name": repo_id}

    def repo_info(self, repo_type: str, repo_id: str, revision: str, headers) -> dict:
        repo = self._repo(repo_type, repo_id, headers)
        sha, files = self._snapshot(repo, revision)
        info = {
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "private": repo.private,
            "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(files)],
        }
        if repo_type == "space":
            info["sdk"] = repo.sdk
        return info

    def preupload(self, repo_type: str, repo_id: str, revision: str, body: dict, headers) -> dict:
        repo = self._repo(repo_type, repo_id, headers, write=True)
        _, files = self._snapshot(repo, revision)
        return {
            "files": [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if b"\0" in base64.b64decode(f["sample"]) else "regular",
                    "shouldIgnore": False,
                    "oid": files[f["path"]].oid if f["path"] in files else None,
                }
                for f in body["files"]
            ]
        }

    def commit(self, repo_type: str, repo_id: str, revision: str, body: bytes, headers) -> dict:
        repo = self._repo(repo_type, repo_id, headers, write=True)
        if revision != "main":
            raise _HubError(400, "this test server commits to the main branch only")
        with self._lock:
            head, files = repo.snapshot("main")
            files = dict(files)
            summary = ""
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", "")
                    if value.get("parentCommit") not in (None, head):
                        raise _HubError(412, "parent commit is not the head of main")
                elif key == "file":
                    files[value["path"]] = _Blob(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    if value["oid"] not in self.lfs_objects:
                        raise _HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = _Blob(self.lfs_objects[value["oid"]], lfs=True)
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(prefix)}
                else:
                    raise _HubError(400, f"this test server does not support commit entries of kind {key!r}")
            sha = _commit_sha(repo_id, len(repo.commits), files)
            repo.commits.append((sha, files, summary))
        url = f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{sha}"
        return {"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None}

    def tree(self, repo_type, repo_id, revision, path, recursive, headers) -> list[dict]:
        repo = self._repo(repo_type, repo_id, headers)
        _, files = self._snapshot(repo, revision)
        entries = _entries(files)
        prefix = path.strip("/")
        if prefix and prefix not in entries:
            raise _HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        if prefix and entries[prefix]["type"] == "file":
            return [entries[prefix]]
        start = prefix + "/" if prefix else ""
        return [
            entry
            for p, entry in sorted(entries.items())
            if p.startswith(start) and (recursive or "/" not in p[len(start) :])
        ]

    def paths_info(self, repo_type, repo_id, revision, paths: list[str], headers) -> list[dict]:
        repo = self._repo(repo_type, repo_id, headers)
        _, files = self._snapshot(repo, revision)
        entries = _entries(files)
        return [entries[p.strip("/")] for p in paths if p.strip("/") in entries]

    def lfs_batch(self, repo_type: str, repo_id: str, body: dict, headers) -> dict:
        self._repo(repo_type, repo_id, headers, write=True)
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", ["basic"]):
            raise _HubError(400, "this test server only accepts basic LFS uploads")
        objects = []
        for obj in body["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:
                answer["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"}}
            objects.append(answer)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def lfs_upload(self, oid: str, content: bytes) -> None:
        # The real Hub hands out presigned storage URLs, so this PUT carries no token either.
        if hashlib.sha256(content).hexdigest() != oid:
            raise _HubError(400, f"content does not match sha256 {oid}")
        with self._lock:
            self.lfs_objects[oid] = content

    def resolve(self, repo_type, repo_id, revision, path, headers) -> tuple[str, _Blob]:
        repo = self._repo(repo_type, repo_id, headers)
        sha, files = self._snapshot(repo, revision)
        if path not in files:
            raise _HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        return sha, files[path]


def _commit_sha(repo_id: str, index: int, files: dict[str, _Blob]) -> str:
    digest = hashlib.sha1(f"{repo_id}\0{index}".encode())
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path].oid.encode())
    return digest.hexdigest()


def _entries(files: dict[str, _Blob]) -> dict[str, dict]:
    """Every file and every folder of a snapshot, as the Hub's tree API describes them."""
    entries: dict[str, dict] = {}
    for path, blob in files.items():
        entries[path] = blob.tree_entry(path)
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            entries[folder] = {
                "type": "directory",
                "path": folder,
                "size": 0,
                "oid": hashlib.sha1(folder.encode()).hexdigest(),
            }
    return entries


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer has a Content-Length

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("HEAD")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self, method: str) -> None:
            body = self._read_body()
            url = urlsplit(self.path)
            hub.requests.append((method, url.path))
            fault = hub._take_fault(method, url.path)
            try:
                if fault is not None:
                    raise _HubError(fault.status, f"injected failure ({fault.status})")
                self._route(method, url.path, parse_qs(url.query), body)
            except _HubError as err:
                headers = {"X-Error-Message": err.message}
                if err.code:
                    headers["X-Error-Code"] = err.code
                self._send(err.status, json.dumps({"error": err.message, **err.extra}).encode(), headers, method)

        def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
            # Split before unquoting: a path inside the repo may arrive as one %2F-encoded segment.
            segments = [unquote(s) for s in path.strip("/").split("/")]
            if segments[0] == "api":
                return self._api(method, segments[1:], query, body)
            if segments[0] == "lfs-upload" and method == "PUT":
                hub.lfs_upload(segments[1], body)
                return self._json({})
            repo_type = _TYPES[segments[0]] if segments[0] in ("datasets", "spaces") else "model"
            if repo_type != "model":
                segments = segments[1:]
            if (
                len(segments) > 1
                and segments[1].endswith(".git")
                and segments[2:] == ["info", "lfs", "objects", "batch"]
            ):
                repo_id = f"{segments[0]}/{segments[1][: -len('.git')]}"
                return self._json(hub.lfs_batch(repo_type, repo_id, json.loads(body), self.headers))
            if len(segments) >= 5 and segments[2] == "resolve" and method in ("GET", "HEAD"):
                repo_id, revision, file_path = "/".join(segments[:2]), segments[3], "/".join(segments[4:])
                sha, blob = hub.resolve(repo_type, repo_id, revision, file_path, self.headers)
                return self._send_file(method, sha, blob)
            raise _HubError(404, f"no route for {method} {path}")

        def _api(self, method: str, segments: list[str], query: dict, body: bytes) -> None:
            h = self.headers
            if segments == ["repos", "create"] and method == "POST":
                return self._json(hub.create_repo(json.loads(body), h))
            if segments == ["validate-yaml"] and method == "POST":
                return self._json({"errors": [], "warnings": []})
            if segments == ["whoami-v2"]:
                if not hub._authorized(h):
                    raise _HubError(401, "Invalid credentials in Authorization header")
                return self._json({"type": "user", "name": USER, "orgs": [], "auth": {"type": "access_token"}})
            if len(segments) < 3 or segments[0] not in _TYPES:
                raise _HubError(404, f"no route for {method} /api/{'/'.join(segments)}")
            repo_type, repo_id = _TYPES[segments[0]], "/".join(segments[1:3])
            action, rest = (segments[3], segments[4:]) if len(segments) > 3 else ("revision", ["main"])
            revision = rest[0] if rest else "main"
            inner_path = "/".join(rest[1:])
            if action == "revision" and method == "GET":
                return self._json(hub.repo_info(repo_type, repo_id, revision, h))
            if action == "preupload" and method == "POST":
                return self._json(hub.preupload(repo_type, repo_id, revision, json.loads(body), h))
            if action == "commit" and method == "POST":
                return self._json(hub.commit(repo_type, repo_id, revision, body, h))
            if action == "tree" and method == "GET":
                recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                return self._json(hub.tree(repo_type, repo_id, revision, inner_path, recursive, h))
            if action == "paths-info" and method == "POST":
                form = parse_qs(body.decode())
                return self._json(hub.paths_info(repo_type, repo_id, revision, form.get("paths", []), h))
            raise _HubError(404, f"no route for {method} /api/{'/'.join(segments)}")

        def _send_file(self, method: str, sha: str, blob: _Blob) -> None:
            content = blob.content
            headers = {
                "ETag": f'"{blob.sha256 if blob.lfs else git_blob_oid(content)}"',
                "X-Repo-Commit": sha,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            status = 200
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
            if match and content:
                first, last = match.groups()
                start = int(first) if first else max(0, len(content) - int(last))
                end = min(int(last), len(content) - 1) if first and last else len(content) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
                content, status = content[start : end + 1], 206
            self._send(status, content, headers, method)

        def _json(self, payload) -> None:
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, self.command)

        def _send(self, status: int, content: bytes, headers: dict[str, str], method: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(content)

    return Handler
