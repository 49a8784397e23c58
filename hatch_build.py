"""Wheel build hook: ship the template's release history as a git bundle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLE_IN_WHEEL = "generator/_bundle/template.git"
QUESTIONS_IN_WHEEL = "generator/_bundle/copier.yml"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if version == "editable":  # an editable install builds the bundle from the checkout at run time
            return
        root = Path(self.root)
        # Load bundle.py by path: the package itself is not importable at build time.
        spec = importlib.util.spec_from_file_location("_gitops_forge_bundle", root / "generator" / "bundle.py")
        bundle = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bundle)
        target = Path(self.directory) / "template.git"
        bundle.build_bundle(root, target)
        build_data["force_include"][str(target)] = BUNDLE_IN_WHEEL
        # The questions travel beside the bundle so the CLI can validate answers without git.
        build_data["force_include"][str(root / "copier.yml")] = QUESTIONS_IN_WHEEL
