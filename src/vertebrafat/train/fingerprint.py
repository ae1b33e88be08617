"""What a model card's validation figures depend on, as one fingerprint.

The named Dice of a card depends on the model (its ONNX sha256) and on the code that turns the
network's output into named bodies and scores them: preprocessing and post-processing
(:mod:`vertebrafat.segmentation`), the labeller (:mod:`vertebrafat.levels`), the label table,
the Dice and the validation itself. :func:`code_fingerprint` hashes that code's syntax tree
without docstrings, so comments, formatting and documentation do not change it but any change
of logic does. A card whose recorded fingerprint differs is stale: ``vertebrafat train
--revalidate MODEL.onnx`` recomputes its figures. No torch import here.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path
from typing import Any, Final

# Modules (or packages: every module inside) that the validation figures depend on.
VALIDATION_CODE: Final[tuple[str, ...]] = (
    "vertebrafat.core.image",
    "vertebrafat.core.labels",
    "vertebrafat.core.model_card",
    "vertebrafat.segmentation",
    "vertebrafat.levels",
    "vertebrafat.stats.overlap",
    "vertebrafat.train.dataset",
    "vertebrafat.train.validation",
)


def source_fingerprint(source: str) -> str:
    """sha256 of a module's syntax tree without docstrings (comments and layout never count).

    Examples
    --------
    >>> a = source_fingerprint("def f(x):\\n    'Twice.'\\n    return 2 * x  # double\\n")
    >>> a == source_fingerprint("def f(x): return 2*x")
    True
    >>> a == source_fingerprint("def f(x): return 3 * x")
    False
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and isinstance(body, list) and body
            and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def _module_files(name: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: every module inside, by dotted name
        root = origin.parent
        return [
            (f"{name}.{'.'.join(p.relative_to(root).with_suffix('').parts)}", p)
            for p in sorted(root.rglob("*.py"))
        ]
    return [(name, origin)]


def code_fingerprint(modules: tuple[str, ...] = VALIDATION_CODE) -> str:
    """One sha256 over :func:`source_fingerprint` of every module in ``modules``, by name."""
    digest = hashlib.sha256()
    for name, path in sorted(f for m in modules for f in _module_files(m)):
        digest.update(f"{name}:{source_fingerprint(path.read_text())}\n".encode())
    return digest.hexdigest()


def validation_fingerprint(model_sha256: str) -> dict[str, Any]:
    """The card's ``validation_fingerprint``: the model's sha256 and the code fingerprint."""
    return {"model_sha256": model_sha256, "code": code_fingerprint(),
            "code_modules": list(VALIDATION_CODE)}


def stale_reason(card: dict[str, Any]) -> str | None:
    """Why the card's validation figures are stale, or ``None`` when they are current."""
    recorded = card.get("validation_fingerprint")
    if not isinstance(recorded, dict):
        return "the card records no validation_fingerprint"
    if recorded.get("model_sha256") != card.get("sha256"):
        return "the figures were computed for another ONNX file (sha256 differs)"
    if recorded.get("code") != code_fingerprint(tuple(recorded.get("code_modules", ()))) or (
        tuple(recorded.get("code_modules", ())) != VALIDATION_CODE
    ):
        return ("the labeller, pre/post-processing or validation code changed since the "
                "figures were computed")
    return None
