"""The manifest's policies: each reference agrees with its spec, every path it records
that exists is one its spec loads (checked before anything is read: a manifest cannot
have the arena read, let alone hash, a file that is not its policy's) and has its
sha256 (read within ``MAX_POLICY_BYTES``; a check never says the digest of the file it
found); the spec that loads exactly the named policy; the policy loaded as
``arena.match`` loads it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from agents.specs import PolicyRef
from arena.artifacts import RecordManifest
from arena.recording import RecordError
from arena.replay.check import Mismatch

MAX_POLICY_FILES = 10_000
"""A policy directory (``run:DIR``) with more files than this is not hashed."""
MAX_POLICY_BYTES = 4 << 30
"""A policy file (or directory) of more bytes than this is not hashed."""

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _hash_into(digest: Any, file: Path, budget: int) -> int | None:
    """Feed ``file``'s bytes to ``digest``; the bytes read, or None for what is not a
    regular file (a FIFO is opened without waiting for a writer), one that holds more
    than its size says (``/proc``), or one of more than ``budget`` bytes."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > budget:
            return None
        left = st.st_size
        while left > 0:
            chunk = fh.read(min(1 << 20, left))
            if not chunk:
                return None  # shorter than its size: changing under us
            digest.update(chunk)
            left -= len(chunk)
        if fh.read(1):
            return None
    return st.st_size


def _sha256_bounded(path: Path) -> str | None:
    """``agents.specs.sha256_of(path)``, reading at most ``MAX_POLICY_BYTES`` and no file
    past its size; None for what no policy is (a device, a FIFO, a ``/proc`` file, a
    directory of more than ``MAX_POLICY_FILES`` files), which is not read."""
    digest = hashlib.sha256()
    if path.is_file():
        return (
            digest.hexdigest() if _hash_into(digest, path, MAX_POLICY_BYTES) is not None else None
        )
    if not path.is_dir():
        return None
    files = []
    for count, f in enumerate(path.rglob("*")):
        if count >= MAX_POLICY_FILES:
            return None
        if f.is_file():
            files.append(f)
    budget = MAX_POLICY_BYTES
    for f in sorted(files):
        digest.update(str(f.relative_to(path)).encode() + b"\0")
        used = _hash_into(digest, f, budget)
        if used is None:
            return None
        budget -= used
    return digest.hexdigest()


def _sha256(seat: str, path: Path) -> str | None:
    """The sha256 ``agents.specs.reference`` records for ``path`` (see ``_sha256_bounded``);
    a file that cannot be read is one line ``RecordError``."""
    try:
        if path.is_file():
            st = path.stat()
            key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
            if key not in _SHA_CACHE:
                digest = _sha256_bounded(path)
                if digest is None:
                    return None
                _SHA_CACHE[key] = digest
            return _SHA_CACHE[key]
        return _sha256_bounded(path)
    except (OSError, RuntimeError) as exc:  # unreadable, a symlink loop
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RecordError(f"the policy file of {seat!r} ({path}) cannot be read: {why}") from None


def _paths(ref: PolicyRef) -> list[str]:
    return ref.path.split("|") if ref.path else []


def _loaded(ref: PolicyRef) -> list[tuple[str, str]]:
    """(path, sha256) of each file a directory policy actually loaded."""
    return [(f["path"], f["sha256"]) for f in (ref.files or {}).values()]


def _is_sha256(digest: str) -> bool:
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _show_digest(digest: str) -> str:
    """The manifest's sha256 as a check quotes it (its start; never anything else)."""
    head = digest[:16]
    return f"{head}..." if all(c in "0123456789abcdef" for c in head) else "(not a sha256)"


def _parse(seat: str, spec: str) -> Any:
    from agents import specs

    try:
        return specs.parse(spec)
    except specs.PolicySpecError as exc:
        raise RecordError(f"the manifest's policies.{seat}.spec: {exc}") from None
    except RecursionError:
        raise RecordError(f"the manifest's policies.{seat}.spec is nested too deeply") from None


def _leaves(seat: str, spec: str) -> list[tuple[Any, str]]:
    """(kind, argument) of each file ``spec`` loads, in the order
    ``agents.specs.reference`` records their paths."""
    from agents import specs

    kind, arg = _parse(seat, spec)
    if kind.takes_spec:
        return [leaf for _, inner in specs.components(arg) for leaf in _leaves(seat, inner)]
    return [(kind, arg)] if kind.takes_path else []


def _leads_to(kind: Any, arg: str) -> Path | None:
    """Where a spec's argument leads from here (symlinks resolved), as
    ``agents.specs.reference`` records it; None where it leads nowhere."""
    try:
        path = kind.locate(arg) if kind.locate is not None else Path(arg).expanduser()
        return Path(path).resolve()
    except (ValueError, OSError, RuntimeError):
        return None


def _named_by(recorded: str, kind: Any, arg: str, pinned: bool) -> tuple[bool, Path | None]:
    """Whether ``recorded`` (a manifest's path) is the file the spec argument ``arg``
    names: where it leads from here; or, for a relative argument of a policy loaded
    from its recorded path (``pinned``), that path made absolute where the record was
    made (it ends with the argument). Also where the argument leads from here."""
    here = _leads_to(kind, arg)
    if here is not None and str(here) == recorded:
        return True, here
    rel = PurePosixPath(arg)
    if not pinned or rel.is_absolute() or arg.startswith("~") or ".." in rel.parts:
        return False, here
    parts = tuple(p for p in rel.parts if p != ".")
    rec = PurePosixPath(recorded)
    return rec.is_absolute() and bool(parts) and rec.parts[-len(parts) :] == parts, here


def _path_mismatch(seat: str, ref: PolicyRef) -> Mismatch | None:
    """Every existing path the manifest records for ``seat`` is a file or directory
    its spec loads: checked before any of them is read."""
    try:
        leaves = _leaves(seat, ref.spec)
    except RecursionError:
        raise RecordError(f"the manifest's policies.{seat}.spec is nested too deeply") from None
    paths = _paths(ref)
    if len(paths) != len(leaves):
        return Mismatch(
            0,
            f"policies.{seat}.path",
            f"policy of {seat!r}: the manifest records {len(paths)} file(s), its spec "
            f"{ref.spec!r} loads {len(leaves)}",
        )
    pinned = len(leaves) == 1 and not _parse(seat, ref.spec)[0].takes_spec
    for recorded, (kind, arg) in zip(paths, leaves, strict=True):
        path = Path(recorded)
        if not path.exists():
            continue  # unavailable: said in the notes of what was not re-derived
        if not (path.is_file() or path.is_dir()):
            return Mismatch(
                0,
                f"policies.{seat}.path",
                f"policy file of {seat!r} ({recorded}) is not a policy file or directory; "
                f"it is not read",
            )
        named, here = _named_by(recorded, kind, arg, pinned)
        if not named:
            return Mismatch(
                0,
                f"policies.{seat}.path",
                f"policy file of {seat!r} ({recorded}) is not the file its spec "
                f"{ref.spec!r} loads ({here if here is not None else 'nothing here'}); "
                f"it is not read",
            )
    return _files_mismatch(seat, ref, leaves)


def _files_mismatch(seat: str, ref: PolicyRef, leaves: list[tuple[Any, str]]) -> Mismatch | None:
    """The files the manifest says a directory policy loaded are the ones it loads."""
    if ref.files is None:
        return None
    field = f"policies.{seat}.files"
    kind = leaves[0][0] if len(leaves) == 1 else None
    if kind is None or kind.files is None or kind.takes_spec:
        return Mismatch(0, field, f"policy of {seat!r}: its spec {ref.spec!r} loads no files")
    directory = Path(_paths(ref)[0])
    recorded = {role: item["path"] for role, item in ref.files.items()}
    if not directory.exists():
        if any(Path(p).exists() for p in recorded.values()):
            return Mismatch(
                0,
                field,
                f"policy of {seat!r}: its directory {directory} is gone, yet the manifest "
                f"records files of it that exist; they are not read",
            )
        return None  # unavailable: said in the notes
    try:
        loads = {role: str(Path(p).resolve()) for role, p in kind.files(str(directory)).items()}
    except (ValueError, OSError, RuntimeError) as exc:
        return Mismatch(
            0, field, f"policy of {seat!r}: {directory} cannot serve as {kind.name}: {exc}"
        )
    if recorded != loads:
        listed = ", ".join(f"{r}: {p}" for r, p in loads.items())
        return Mismatch(
            0,
            field,
            f"policy of {seat!r}: the files the manifest records are not the ones "
            f"{kind.name}:{directory} loads ({listed}); they are not read",
        )
    return None


def _check_ref(seat: str, ref: PolicyRef) -> Mismatch | None:
    kind, _ = _parse(seat, ref.spec)
    if kind.name != ref.kind:
        return Mismatch(
            0,
            f"policies.{seat}.kind",
            f"policy of {seat!r}: its spec {ref.spec!r} is of kind {kind.name!r}, "
            f"the manifest says {ref.kind!r}",
        )
    paths, hashes = _paths(ref), ref.sha256.split("|") if ref.sha256 else []
    if len(paths) != len(hashes) or (paths and not (kind.takes_path or kind.takes_spec)):
        return Mismatch(
            0,
            f"policies.{seat}.sha256",
            f"policy of {seat!r}: {len(paths)} file(s) but {len(hashes)} sha256(s) "
            f"for a {kind.name!r} policy",
        )
    if kind.takes_path and not kind.takes_spec and not paths:
        return Mismatch(
            0,
            f"policies.{seat}.sha256",
            f"policy of {seat!r}: a {kind.name!r} policy without its file's sha256",
        )
    for digest in [*hashes, *(d for _, d in _loaded(ref))]:
        if not _is_sha256(digest):
            return Mismatch(
                0,
                f"policies.{seat}.sha256",
                f"policy of {seat!r}: the manifest records {_show_digest(digest)} where a "
                f"sha256 (64 hex digits) belongs; no file is read",
            )
    bad = _path_mismatch(seat, ref)
    if bad:
        return bad
    for path, digest in [*zip(paths, hashes, strict=True), *_loaded(ref)]:
        if not Path(path).exists():
            continue  # unavailable: said in the notes of what was not re-derived
        actual = _sha256(seat, Path(path))
        if actual is None:
            return Mismatch(
                0,
                f"policies.{seat}.path",
                f"policy file of {seat!r} ({path}) is not a policy file or directory",
            )
        if actual != digest:  # its own digest is not said: the file is not the policy's
            return Mismatch(
                0,
                f"policies.{seat}.sha256",
                f"policy file of {seat!r} ({path}) is not the file whose sha256 the manifest "
                f"records {_show_digest(digest)}",
            )
    return None


def check_policy_refs(manifest: RecordManifest) -> Mismatch | None:
    """Each ref's kind is its spec's; each path it records that exists is a file its
    spec loads (checked before anything is read) and has its recorded sha256."""
    for seat, ref in manifest.policies.items():
        bad = _check_ref(seat, ref)
        if bad:
            return bad
    return None


def _spec_of(seat: str, ref: PolicyRef) -> tuple[str | None, str]:
    from agents import specs

    paths = _paths(ref)
    for path in [*paths, *(p for p, _ in _loaded(ref))]:
        if not Path(path).exists():
            return None, f"the policy file of {seat!r} ({path}) is unavailable"
    kind = specs.kinds().get(ref.kind)
    if kind is not None and kind.takes_path and not kind.takes_spec and len(paths) == 1:
        return f"{ref.kind}:{paths[0]}", ""
    return ref.spec, ""


def policy_specs(manifest: RecordManifest) -> tuple[dict[str, str] | None, str]:
    """seat -> the spec that loads exactly the policy the manifest names (a seat it
    leaves empty: the game's default, as the match filled it); or (None, why not)."""
    from arena.match import MissingPolicy, check_seats

    try:
        filled = check_seats(manifest.env, manifest.policies)
    except MissingPolicy as exc:
        return None, f"the manifest names no policy for {exc.seat!r}"
    out: dict[str, str] = {}
    for seat, ref in filled.items():
        if isinstance(ref, str):
            out[seat] = ref
            continue
        spec, why = _spec_of(seat, ref)
        if spec is None:
            return None, why
        out[seat] = spec
    return out, ""


_POLICIES: dict[str, Any] = {}


def load_policy(manifest: RecordManifest, env: Any, seat: str, spec: str) -> Any:
    """Loaded as ``arena.match`` loads it; kept (like match's cache) for files whose
    sha256 the manifest records and ``check_policy_refs`` has checked."""
    from agents import specs

    ref = manifest.policies.get(seat)
    hashed = ref is not None and bool(ref.sha256)
    key = json.dumps(
        [manifest.env, manifest.env_kwargs, seat, spec, ref.to_json() if ref else None],
        sort_keys=True,
        default=str,
    )
    if hashed and key in _POLICIES:
        return _POLICIES[key]
    policy = specs.resolve(
        spec,
        env.observation_space(seat),
        env.action_space(seat),
        env_id=manifest.env,
        seat=seat,
    )
    if hashed:
        if len(_POLICIES) >= 8:
            _POLICIES.pop(next(iter(_POLICIES)))
        _POLICIES[key] = policy
    return policy
