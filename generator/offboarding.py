"""The runbook `gitops-forge remove team` prints: removing a team from Git never deletes its namespace
(the generated Namespace is protected from prune and cascade deletion), so the last step is a person's."""

from __future__ import annotations

from typing import Any

PROTECTION = {
    "flux": "kustomize.toolkit.fluxcd.io/prune: disabled",
    "argocd": "argocd.argoproj.io/sync-options: Prune=false,Delete=false",
}


def remove_team_runbook(answers: dict[str, Any], team: str) -> str:
    """Two steps: merge the removal (the namespace stays), then delete the namespace by hand on each cluster."""
    engine = answers.get("engine", "flux")
    clusters = ", ".join(c["name"] for c in answers.get("clusters", [])) or "each cluster"
    tool = "Flux" if engine == "flux" else "Argo CD"
    review = "merge request" if answers.get("ci") == "gitlab" else "pull request"
    return "\n".join([
        f"Offboarding team {team} takes two steps (docs/onboarding.md, \"Offboarding a team\"):",
        f"  1. Commit this change and merge it in a {review}. {tool} then removes the team's project, roles,",
        f"     quotas and policies, but not its namespace {team}: it is annotated",
        f"     {PROTECTION[engine]}, so its volumes and Secrets stay.",
        f"  2. On every cluster ({clusters}), once {tool} has synced the merge, check what is left and save",
        "     what must be kept, then delete the namespace by hand:",
        f"       kubectl get all,persistentvolumeclaims,secrets,configmaps --namespace {team}",
        f"       kubectl delete namespace {team}",
    ])
