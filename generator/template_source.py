"""Where the template comes from, and which versions of it exist.

Generated repos record a canonical https URL as `_src_path`, never a path on
this machine. At run time that URL is redirected (git `insteadOf`) to a local
bundle of the template's release history: the one shipped inside the wheel,
or one built from a development checkout. Plain `copier update` keeps working
wherever the canonical URL is reachable.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from . import bundle

CANONICAL_URL = "https://github.com/gitops-forge/gitops-forge.git"
PACKAGED_BUNDLE = Path(__file__).parent / "_bundle" / "template.git"
PACKAGED_QUESTIONS = Path(__file__).parent / "_bundle" / "copier.yml"
CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gitops-forge"


@dataclass(frozen=True)
class TemplateSource:
    """A template as Copier sees it: the URL it records and how git reaches it."""

    url: str
    bundle: Path | None = None  # local mirror the URL is redirected to
    trusted: bool = True  # only the first-party template may run unsafe features

    def git_env(self, *settings: tuple[str, str]) -> dict[str, str]:
        """Environment that makes git fetch `url` from the local bundle, with the git ``settings`` given."""
        pairs = [*([(f"url.{self.bundle}.insteadOf", self.url)] if self.bundle else []), *settings]
        if not pairs:
            return {}
        env = {"GIT_CONFIG_COUNT": str(len(pairs))}
        for index, (key, value) in enumerate(pairs):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    def versions(self) -> list[Version]:
        """Release versions available from this source, oldest first."""
        target = str(self.bundle) if self.bundle else self.url
        result = subprocess.run(
            ["git", "ls-remote", "--tags", target], capture_output=True, text=True, env={**os.environ, **self.git_env()}
        )
        if result.returncode != 0:
            raise TemplateUnavailable(f"cannot list template versions at {self.url}: {result.stderr.strip()}")
        versions = []
        for line in result.stdout.splitlines():
            tag = line.rsplit("refs/tags/", 1)[-1].removesuffix("^{}")
            try:
                versions.append(Version(tag))
            except InvalidVersion:
                continue
        return sorted(set(versions))

    def latest(self) -> Version:
        versions = self.versions()
        if not versions:
            raise TemplateUnavailable(f"the template at {self.url} has no release tags")
        return versions[-1]


class TemplateUnavailable(RuntimeError):
    """The template source cannot be reached or has no releases."""


def from_checkout(root: Path) -> TemplateSource:
    """The template of a development checkout, bundled with its release history."""
    root = root.resolve()
    target = cache_dir() / "bundles" / f"{bundle.checkout_fingerprint(root)}.git"
    if not target.exists():
        bundle.build_bundle(root, target)
    return TemplateSource(url=CANONICAL_URL, bundle=target)


def builtin() -> TemplateSource:
    """The template this installation of gitops-forge ships."""
    if PACKAGED_BUNDLE.exists():
        return TemplateSource(url=CANONICAL_URL, bundle=PACKAGED_BUNDLE)
    if (CHECKOUT_ROOT / "copier.yml").exists():
        return from_checkout(CHECKOUT_ROOT)
    raise TemplateUnavailable("this installation of gitops-forge has no template bundle; reinstall the package")


def from_user(location: str, *, trust: bool) -> TemplateSource:
    """A template the user names (URL or local git checkout); unsafe features need explicit trust."""
    path = Path(location).expanduser()
    url = str(path.resolve()) if path.exists() else location
    return TemplateSource(url=url, trusted=trust)


def questions_file() -> Path:
    """copier.yml of the template this installation ships (the newest version)."""
    return PACKAGED_QUESTIONS if PACKAGED_QUESTIONS.exists() else CHECKOUT_ROOT / "copier.yml"
