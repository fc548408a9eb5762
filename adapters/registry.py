"""Versioned adapters under <home>/adapters/<name>/: v0001/, v0002/… and a `current` pointer.

    adapters/core-self/v0001/   adapter_config.json, adapter_model.safetensors, tokenizer
                                files, manifest.json (base model, dataset hash, options,
                                metrics, parent, status, created_at)
    adapters/core-self/current  {"version": "v0002", "history": ["v0001"], "updated_at": …}

A version folder is filled under a temporary name and renamed into place, and `current` is
replaced with os.replace, so a reader never sees a half-written version or pointer, and a
failed or rejected run never changes `current`. Domain adapters are other names beside
core-self (adapters/sport/…); nothing here depends on the name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mem.corpus.files import write_atomic
from mem.corpus.records import utc_now

CORE = "core-self"
_VERSION = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class RegistryError(Exception):
    """An unknown version, a bad name, or nothing to roll back to."""


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    path: Path
    manifest: dict
    current: bool

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "current": self.current,
            "status": self.manifest.get("status"),
            "created_at": self.manifest.get("created_at"),
            "base_model": self.manifest.get("base_model"),
            "parent": self.manifest.get("parent"),
            "dataset": self.manifest.get("dataset", {}).get("id"),
            "primary_metric": self.manifest.get("primary_metric"),
            "metrics": self.manifest.get("metrics", {}).get("adapter", {}),
        }


class Registry:
    """The versions of one adapter name."""

    def __init__(self, root: Path, name: str = CORE) -> None:
        if not _NAME.match(name):
            raise RegistryError(f"bad adapter name {name!r} (lowercase letters, digits, - and _)")
        self.name = name
        self.dir = Path(root) / name

    # -- reading ---------------------------------------------------------------------------

    def _pointer(self) -> dict:
        path = self.dir / "current"
        if not path.exists():
            return {"version": None, "history": []}
        return json.loads(path.read_text(encoding="utf-8"))

    def current(self) -> str | None:
        return self._pointer()["version"]

    def version_names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        found = [p.name for p in self.dir.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def resolve(self, version: str) -> str:
        """ "current", "latest", "v0003", "3" -> "v0003"."""
        if version == "current":
            found = self.current()
            if found is None:
                raise RegistryError(f"{self.name} has no current version yet")
            return found
        if version == "latest":
            names = self.version_names()
            if not names:
                raise RegistryError(f"{self.name} has no versions yet")
            return names[-1]
        if version.isdigit():
            version = f"v{int(version):04d}"
        if version not in self.version_names():
            raise RegistryError(f"{self.name} has no version {version!r}")
        return version

    def get(self, version: str = "current") -> Version:
        name = self.resolve(version)
        path = self.dir / name
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        return Version(self.name, name, path, manifest, name == self.current())

    def list(self) -> list[Version]:
        return [self.get(v) for v in self.version_names()]

    def history(self) -> list[str]:
        return list(self._pointer().get("history", []))

    # -- writing ---------------------------------------------------------------------------

    def add(self, adapter_dir: Path, manifest: dict) -> Version:
        """Copy a trained adapter folder in as the next version (not made current)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            names = self.version_names()
            number = int(names[-1][1:]) + 1 if names else 1
            version = f"v{number:04d}"
            tmp = self.dir / f".{version}.{os.getpid()}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(adapter_dir, tmp)
            full = {
                "name": self.name,
                "version": version,
                "created_at": utc_now(),
                "parent": self.current(),
                **manifest,
            }
            (tmp / "manifest.json").write_text(
                json.dumps(full, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            try:
                os.rename(tmp, self.dir / version)  # fails if another writer took the number
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                continue
            return self.get(version)

    def use(self, version: str) -> Version:
        """Make `version` current; the one it replaces goes onto the rollback history."""
        target = self.resolve(version)
        pointer = self._pointer()
        history = pointer.get("history", [])
        if pointer["version"] and pointer["version"] != target:
            history = [*history, pointer["version"]]
        self._set(target, history)
        return self.get(target)

    def rollback(self) -> str | None:
        """Back to the version that was current before; with no history, to the current
        version's parent; with neither, to no adapter (the base model). Returns the new current."""
        pointer = self._pointer()
        if pointer["version"] is None:
            raise RegistryError(f"{self.name} has no current version to roll back from")
        history = list(pointer.get("history", []))
        if history:
            target = history.pop()
        else:
            target = self.get(pointer["version"]).manifest.get("parent")
        self._set(target, history)
        return target

    def _set(self, version: str | None, history: list[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pointer = {"version": version, "history": history[-50:], "updated_at": utc_now()}
        write_atomic(self.dir / "current", json.dumps(pointer, indent=2) + "\n")
