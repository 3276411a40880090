"""The standard victims of the literature: where they are published, their checksums,
and ``arena fetch``, which downloads them into the cache (``agents.home``).

Every file is pinned here by repository, commit, path, size and sha256 (the facts of
``../shared/VICTIM_SOURCES.md``); a download is checked against them before it is
moved into place, so the cache never holds a file that is not the published one. A
download goes to ``NAME.part`` first; an interrupted one continues from there (an HTTP
range request) or, where the server cannot, starts over.

``ARENA_FETCH_MIRROR`` (a base URL) replaces ``https://raw.githubusercontent.com``: a
mirror, or the loopback server of the tests.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.home import arena_home
from arena.errors import ArenaError

RAW = "https://raw.githubusercontent.com"
MIRROR_ENV = "ARENA_FETCH_MIRROR"
CHUNK = 1 << 16


class FetchError(ArenaError):
    """A victim that cannot be fetched (one line: what, and where to put it by hand)."""


@dataclass(frozen=True)
class Victim:
    name: str
    """What ``arena fetch`` and the policy specs call it (``zoo:NAME`` or ``atari:NAME``)."""
    kind: str
    """``zoo`` or ``atari``: the cache folder and the policy kind that loads it."""
    repo: str
    commit: str
    path: str
    """Inside the repository."""
    sha256: str
    size: int
    licence: str
    what: str
    published: str = ""
    """The score its authors (or the shared README) report, where known."""

    @property
    def url(self) -> str:
        base = os.environ.get(MIRROR_ENV, "").rstrip("/") or RAW
        return f"{base}/{self.repo}/{self.commit}/{self.path}"

    def target(self, home: Path | None = None) -> Path:
        """Where ``arena fetch`` puts it: ``HOME/KIND/NAME``."""
        return (home or arena_home()) / self.kind / self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": f"{self.kind}:{self.name}",
            "what": self.what,
            "source": f"https://github.com/{self.repo}/blob/{self.commit}/{self.path}",
            "licence": self.licence,
            "sha256": self.sha256,
            "bytes": self.size,
            "published": self.published,
        }


_ZOO = ("openai/multiagent-competition", "b2e081a192429913b7d21a89525901d59c85e7f3")
_ZOO_FILES = (
    (
        "kick-and-defend/defender/agent2_parameters-v1.pkl",
        "525689ed9bf5e0bd99b84624781760f2de7faa41638c82bab674322bd85093ed",
        1459517,
    ),
    (
        "kick-and-defend/defender/agent2_parameters-v2.pkl",
        "5d0f271fe18d7a7f713af5827ad014ff0bd49d93149932f3eb052001b18f9182",
        1459517,
    ),
    (
        "kick-and-defend/defender/agent2_parameters-v3.pkl",
        "1e6975eede302adf254c2c61e4b16673bdece4c64fcd8f15481a54c702dba558",
        1459517,
    ),
    (
        "kick-and-defend/kicker/agent1_parameters-v1.pkl",
        "4f3f79909cc13960637672e8065fa3c6f38a68ee23703741f5dda6dbc0548fef",
        1459517,
    ),
    (
        "kick-and-defend/kicker/agent1_parameters-v2.pkl",
        "4bdbda77beec972c534781cd0b7b6ed4f35b29b7a6dcb351a8da1c278f2a3e30",
        1459517,
    ),
    (
        "kick-and-defend/kicker/agent1_parameters-v3.pkl",
        "f2decea19d00a9f7952c9e1c47c73e5af719ecc1c41b1545cff33286dcc0f9c3",
        1459517,
    ),
    (
        "run-to-goal/ants/agent1_parameters-v1.pkl",
        "a4952a461f762fa55973a113b42f1a797e6e2a3e45183b7eabc5181d9a90bc1c",
        99779,
    ),
    (
        "run-to-goal/ants/agent2_parameters-v1.pkl",
        "a4993568758d7eb48317a5051c87df242cc6e37f205319a32535250f4a950785",
        99779,
    ),
    (
        "run-to-goal/humans/agent1_parameters-v1.pkl",
        "bb68dfeaf4b51872ca63c8e0e5d9c0594e9296e5f869a2a2f741a5cb4d3cd5d8",
        236315,
    ),
    (
        "run-to-goal/humans/agent2_parameters-v1.pkl",
        "c7f30c19a2cdc05942572ff006d68003832f8680acea77504d5fc5fa9311423e",
        236315,
    ),
    (
        "sumo/ants/agent_parameters-v1.pkl",
        "c7c6d3104506bbd7ee69abe94746646f2bd9a377c168a6136b05a1e61cf00881",
        1199933,
    ),
    (
        "sumo/ants/agent_parameters-v2.pkl",
        "10a6357fd1854e7ee390acff9c7fe9501c68aba64cc17efd15d78929bf3e7050",
        1199933,
    ),
    (
        "sumo/ants/agent_parameters-v3.pkl",
        "a4ecc6a75b25e9dce8dbd555f557dc8b4811eafd0e96b752a62eb3e4f890279d",
        1199933,
    ),
    (
        "sumo/ants/agent_parameters-v4.pkl",
        "5c79b84f30bd8b783e1b217d8b90c9f460d64a1a1174d075ccb204e66935eda1",
        1199933,
    ),
    (
        "sumo/humans/agent_parameters-v1.pkl",
        "cf2d4f4e67e0d50bdfcd7e053c2791362600255fc95b4a50b13177973cc63083",
        1470869,
    ),
    (
        "sumo/humans/agent_parameters-v2.pkl",
        "ceb4716093db34ea3889af7f577888bb7420749bae41ac8c7042d10c13cbc8da",
        1470869,
    ),
    (
        "sumo/humans/agent_parameters-v3.pkl",
        "e56d0b452f873a0a1f1ae27c07fe1709a246729731f0f1a0182d651784bbae7e",
        1470869,
    ),
    # published without the dot before "pkl"; kept here under the name the zoo uses
    (
        "you-shall-not-pass/agent1_parameters-v1.pkl",
        "eba00a1165b7b17f32b33d3e1062da1a0b2c4b822b76718db4f207cbcef64b7e",
        236315,
    ),
    (
        "you-shall-not-pass/agent2_parameters-v1.pkl",
        "4918ddfca5828c2455c75e7b9def6a801567abc5b68cad34e038c22c2fbfdf6a",
        236315,
    ),
)
_ZOO_PUBLISHED_AS = {
    "you-shall-not-pass/agent1_parameters-v1.pkl": "you-shall-not-pass/agent1_parameters-v1pkl"
}
_DAVIDE = ("davide97l/rl-policies-attacks-defenses", "a5e420a39b6d0eaf38b300ae5d74d4732e5eb6ec")
_IKOSTRIKOV = ("ikostrikov/pytorch-a2c-ppo-acktr-gail", "dd825adb42146b5bef51fc8880c889d77e5846ab")
_ATARI = (
    (
        "pong_ppo.pth",
        _DAVIDE,
        "log/PongNoFrameskip-v4/ppo/policy.pth",
        "410f30b2eae70192c19feffbb5d6f61d5505eb9c0752f621de361a1e27fff299",
        3473382,
        "Pong, PPO",
    ),
    (
        "pong_a2c.pth",
        _DAVIDE,
        "log/PongNoFrameskip-v4/a2c/policy.pth",
        "96e3a4f9087b614198b1f6c7754e69ec62c3fb7ca08a21acbb95dc62cd1b315e",
        3473383,
        "Pong, A2C",
    ),
    (
        "pong_ppo_advtrained.pth",
        _DAVIDE,
        "log_def/PongNoFrameskip-v4/ppo/policy.pth",
        "81bbcabab6fb8b592699d3735153fb7033458cfb39368f75bde5084a0594edcf",
        3473392,
        "Pong, PPO adversarially trained",
    ),
    (
        "breakout_ppo.pth",
        _DAVIDE,
        "log/BreakoutNoFrameskip-v4/ppo/policy.pth",
        "b116f1c0974bc9b51374885227dc88e5de7ac7decd94dd4ae26a69e58513945e",
        3469287,
        "Breakout, PPO",
    ),
    (
        "pong_acktr.pt",
        _IKOSTRIKOV,
        "trained_models/acktr/PongNoFrameskip-v4.pt",
        "5f6030e938ad54562f557b508bb50a5bdcf2c88d9bcac667086599a37ea1f2d2",
        3479587,
        "Pong, ACKTR",
    ),
)


_ATARI_SCORES = {
    "pong_ppo.pth": "21 (greedy, full game; ../shared/atari/README.md)",
    "pong_acktr.pt": "20.3 (greedy, full game; ../shared/atari/README.md)",
    "pong_ppo_advtrained.pth": "21 (greedy, full game; ../shared/atari/README.md)",
}
"""Scores measured on the converted files (the repositories publish none)."""


def _zoo_what(name: str) -> str:
    game, _, rest = name.partition("/")
    return f"Bansal et al. 2018 agent zoo: {game} {rest.removesuffix('.pkl')}"


CATALOG: dict[str, Victim] = {
    v.name: v
    for v in (
        *(
            Victim(
                name=name,
                kind="zoo",
                repo=_ZOO[0],
                commit=_ZOO[1],
                path=f"agent-zoo/{_ZOO_PUBLISHED_AS.get(name, name)}",
                sha256=sha,
                size=size,
                licence="MIT",
                what=_zoo_what(name),
            )
            for name, sha, size in _ZOO_FILES
        ),
        *(
            Victim(
                name=name,
                kind="atari",
                repo=repo[0],
                commit=repo[1],
                path=path,
                sha256=sha,
                size=size,
                licence="MIT",
                what=f"{what} ({repo[0]}, PyTorch file as published)",
                published=_ATARI_SCORES.get(name, ""),
            )
            for name, repo, path, sha, size, what in _ATARI
        ),
    )
}
GROUPS = ("all", "zoo", "atari")


def select(names: list[str]) -> list[Victim]:
    """The victims ``names`` name (a name, or a group: all, zoo, atari); a name the
    catalog lacks is a ``FetchError`` listing the valid ones."""
    out: dict[str, Victim] = {}
    for name in names:
        if name in GROUPS:
            out.update({k: v for k, v in CATALOG.items() if name == "all" or v.kind == name})
        elif name in CATALOG:
            out[name] = CATALOG[name]
        else:
            valid = ", ".join([*GROUPS, *CATALOG])
            raise FetchError(f"unknown victim {name!r}; valid: {valid}")
    return list(out.values())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_published(victim: Victim, path: Path) -> bool:
    """``path`` is the published file: its size, then its sha256."""
    return (
        path.is_file() and path.stat().st_size == victim.size and sha256_file(path) == victim.sha256
    )


def present(victim: Victim, home: Path | None = None) -> Path | None:
    """Where the published file is on this machine (the zoo or Atari folder given by
    the environment, else the cache), checked by size and sha256; None if nowhere."""
    roots = {"zoo": "ARENA_ZOO_DIR", "atari": "ARENA_ATARI_DIR"}
    candidates = [victim.target(home)]
    given = os.environ.get(roots[victim.kind], "").strip()
    if given:
        candidates.insert(0, Path(given).expanduser() / victim.name)
    for path in candidates:
        try:
            if _is_published(victim, path):
                return path
        except OSError:
            continue
    return None


class _TooLong(Exception):
    pass


def fetch(
    victim: Victim,
    *,
    home: Path | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    deadline: float | None = None,
) -> Path:
    """Download ``victim`` into the cache (resuming ``.part``), check its size and
    sha256, then move it into place. A file already there and right is kept. Each read
    waits at most ``timeout`` s, the whole download ``deadline`` (default: 10 timeouts
    plus a second per 100 kB)."""
    if deadline is None:
        deadline = 10 * timeout + victim.size / 100_000
    target = victim.target(home)
    root = (home or arena_home()) / victim.kind
    hand = (
        f"put the file by hand at {target} (from {victim.to_json()['source']}, "
        f"sha256 {victim.sha256})"
    )
    try:
        if not target.resolve().is_relative_to(root.resolve()):
            raise FetchError(f"{victim.name}: the name leads outside the cache {root}")
        if _is_published(victim, target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot use the cache {root}: {exc.strerror or exc}") from None
    part = target.with_name(target.name + ".part")
    if part.is_symlink() or (part.exists() and not part.is_file()):
        raise FetchError(f"{part} is not a plain file; remove it and fetch again")
    have = part.stat().st_size if part.is_file() else 0
    if have > victim.size:
        part.unlink()
        have = 0
    if have == victim.size:  # complete: stopped before the rename
        return _finish(victim, part, target, hand)
    request = urllib.request.Request(victim.url)
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:  # no ranges here: start over
                have = 0
            _copy(response, part, have, victim, progress, deadline)
    except _TooLong:
        part.unlink()
        raise FetchError(
            f"{victim.name}: the server sent more than the published {victim.size:,} bytes; "
            f"nothing was kept"
        ) from None
    except http.client.HTTPException as exc:  # the connection broke mid-file
        raise FetchError(
            f"{victim.name}: the download was interrupted ({type(exc).__name__}) after "
            f"{part.stat().st_size if part.is_file() else 0:,} bytes; `arena fetch "
            f"{victim.name}` continues it"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"cannot download {victim.name} from {victim.url}: {reason}; {hand}"
        ) from None
    return _finish(victim, part, target, hand)


def _finish(victim: Victim, part: Path, target: Path, hand: str) -> Path:
    """Check the downloaded ``part`` and move it into place."""
    size = part.stat().st_size
    if size != victim.size:
        raise FetchError(
            f"{victim.name}: the download stopped at {size:,} of {victim.size:,} bytes "
            f"(kept as {part.name}; `arena fetch {victim.name}` continues it)"
        )
    digest = sha256_file(part)
    if digest != victim.sha256:
        part.unlink()
        raise FetchError(
            f"{victim.name}: sha256 {digest} is not the published {victim.sha256}; "
            f"nothing was kept (a changed or corrupted file upstream?)"
        )
    try:
        os.replace(part, target)
    except OSError as exc:
        raise FetchError(f"cannot put {victim.name} at {target}: {exc.strerror or exc}") from None
    return target


def _copy(
    response: Any, part: Path, have: int, victim: Victim, progress: bool, deadline: float
) -> None:
    import time

    from tqdm import tqdm

    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if have else os.O_TRUNC)
    with (
        os.fdopen(os.open(part, flags, 0o644), "ab" if have else "wb") as fh,
        tqdm(
            total=victim.size,
            initial=have,
            unit="B",
            unit_scale=True,
            desc=victim.name,
            disable=None if progress else True,
            leave=False,
        ) as bar,
    ):
        written, start = have, time.monotonic()
        while chunk := _read_some(response):
            if time.monotonic() - start > deadline:
                raise TimeoutError(f"no complete download within {deadline:g} s")
            written += len(chunk)
            if written > victim.size:  # more than the published file: not it
                raise _TooLong
            fh.write(chunk)
            bar.update(len(chunk))


def _read_some(response: Any) -> bytes:
    """What the server has sent so far, at most ``CHUNK`` bytes (``read1``: one receive,
    so a server dripping bytes meets the deadline between chunks)."""
    read1 = getattr(response, "read1", None)
    return read1(CHUNK) if callable(read1) else response.read(CHUNK)
