"""The one factory that builds a Copilot from settings: retriever, backend, guardrail, prompts, drafter."""

from __future__ import annotations

from pathlib import Path

from copilot.draft.offline.compose import OfflineDrafter
from copilot.draft.pipeline import Copilot
from copilot.draft.prompts import PromptSet
from copilot.settings import Settings
from copilot.understand.model import WEIGHTS, MessageModel


def build_copilot(settings: Settings, backend: str | None = None) -> Copilot:
    """The one factory: retriever, backend, guardrail, prompts and drafter from ``settings``."""
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.llm.registry import build_backend
    from copilot.retrieval.hybrid import HybridRetriever

    chosen = build_backend(settings, backend)
    retriever = HybridRetriever.from_settings(settings)
    judge = chosen if settings.guardrail_llm_judge and chosen.name != "offline" else None
    guardrail = PolicyGuardrail.from_settings(settings, judge=judge)
    guardrail.warm()  # else the first draft in each language compiles its patterns
    return Copilot(
        retriever=retriever,
        backend=chosen,
        guardrail=guardrail,
        prompts=PromptSet.load(settings.prompts_dir),
        drafter=OfflineDrafter.from_file(
            settings.prompts_dir / "offline_phrases.yaml", retriever.article
        ),
        settings=settings,
        understanding=load_understanding(settings),
    )


def load_understanding(settings: Settings) -> MessageModel | None:
    """The learned message-understanding model, or None (the rules route) when it is turned
    off or its weights file is absent; changed, stale or foreign weights are refused."""
    from copilot.heads.model import data_sha256
    from copilot.understand.messages import TRAIN_DIR, training_files

    if not settings.understand_learned:
        return None
    if not (settings.models_dir / f"{WEIGHTS}.npz").exists():
        return None
    folder = Path(TRAIN_DIR)
    sha = data_sha256(training_files(folder)) if folder.is_dir() else None
    return MessageModel.load(settings.models_dir, data_sha256=sha)
