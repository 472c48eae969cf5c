"""Load flows from a ``FLOWS`` reference: ``path/to/flows.py`` or ``pkg.module``, optionally
followed by ``:attr``.

Without ``:attr`` every :class:`~pgflow.Flow` the module holds is returned, in the order
the flows were created (definition order). An error while importing the user's module is
reported as :class:`~pgflow.errors.FlowLoadError` showing the user's own traceback lines,
never pgflow's or importlib's internals.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from pgflow.dsl.flow import Flow
from pgflow.errors import FlowLoadError, PgflowError

__all__ = ["load_flows", "split_reference"]

_PGFLOW_DIR = str(Path(__file__).resolve().parent)


def split_reference(reference: str) -> tuple[str, str | None]:
    """Split ``"target:attr"`` into ``("target", "attr")`` (a Windows drive is not an attr)."""
    target, sep, attr = reference.rpartition(":")
    if sep and target and attr.isidentifier() and not (len(target) == 1 and target.isalpha()):
        return target, attr
    return reference, None


def load_flows(reference: str, attr: str | None = None) -> list[Flow]:
    """Import ``reference`` and return its flows.

    Args:
        reference: a file path (``flows.py``) or dotted module (``app.flows``), optionally
            with ``:attr``.
        attr: the attribute holding a Flow (or a list of Flows); overrides ``:attr``.

    Returns:
        The flows, in definition order, each slug once.

    Raises:
        FlowLoadError: the file or module cannot be found or imported, the attribute is
            missing or not a Flow, it defines no flow, or two flows share a slug.
    """
    target, inline_attr = split_reference(reference)
    module = _import(target)
    flows = _select(module, target, attr or inline_attr)
    _check_unique(flows, target)
    return flows


def _import(target: str) -> ModuleType:
    if target.endswith(".py") or os.sep in target or "/" in target:
        return _import_file(Path(target))
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # `pgflow worker app.flows` run from the project root
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            raise FlowLoadError(
                f"no module named {target!r}",
                hint="run pgflow from your project root, or pass a file path like app/flows.py",
            ) from None
        raise _import_failed(target, exc) from None
    except Exception as exc:  # noqa: BLE001 - any error in user code is reported
        raise _import_failed(target, exc) from None


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise FlowLoadError(f"no such file: {path}", hint="check the path to your flows file")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FlowLoadError(f"cannot import {path}", hint="the flows file must be a .py file")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves forward references through sys.modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in user code is reported
        del sys.modules[name]
        raise _import_failed(str(path), exc) from None
    return module


def _module_name(path: Path) -> str:
    existing = sys.modules.get(path.stem)
    if existing is None or getattr(existing, "__file__", None) == str(path):
        return path.stem
    return f"_pgflow_flows_{abs(hash(str(path))):x}_{path.stem}"


def _import_failed(target: str, exc: BaseException) -> FlowLoadError:
    user_frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(("<frozen", _PGFLOW_DIR))
    ]
    lines = traceback.format_list(user_frames)
    if isinstance(exc, PgflowError):
        where = f"{user_frames[-1].filename}:{user_frames[-1].lineno}: " if user_frames else ""
        trace = "".join(lines[-1:])
        return FlowLoadError(
            f"{where}{exc.message}\n{trace}".rstrip(), hint=exc.hint, cause=exc, target=target
        )
    detail = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    trace = "Traceback (most recent call last):\n" + "".join(lines) if lines else ""
    return FlowLoadError(
        f"importing {target} failed:\n{trace}{detail}",
        hint="fix the error in your flows module (the traceback shows where)",
        cause=exc,
        target=target,
    )


def _select(module: ModuleType, target: str, attr: str | None) -> list[Flow]:
    if attr is not None:
        return _attribute(module, target, attr)
    flows = {id(v): v for v in vars(module).values() if isinstance(v, Flow)}
    if not flows:
        raise FlowLoadError(
            f"{target} defines no pgflow.Flow",
            hint="define one at module level, e.g. flow = Flow('my_flow'), or name it with :attr",
        )
    return sorted(flows.values(), key=lambda flow: flow.creation_order)


def _attribute(module: ModuleType, target: str, attr: str) -> list[Flow]:
    if not hasattr(module, attr):
        names = sorted(k for k, v in vars(module).items() if isinstance(v, Flow))
        raise FlowLoadError(
            f"{target} has no attribute {attr!r}",
            hint=f"flows defined there: {', '.join(names) or 'none'}",
        )
    value = getattr(module, attr)
    items = list(value) if isinstance(value, list | tuple) else [value]
    items = list({id(item): item for item in items}.values())
    if not items or not all(isinstance(item, Flow) for item in items):
        raise FlowLoadError(
            f"{target}:{attr} is not a pgflow.Flow (or a list of them): {type(value).__name__}",
            hint="point :attr at a Flow, e.g. flows.py:my_flow",
        )
    return items


def _check_unique(flows: list[Flow], target: str) -> None:
    seen: set[str] = set()
    for flow in flows:
        if flow.slug in seen:
            raise FlowLoadError(
                f"{target} defines two different flows with the slug {flow.slug!r}",
                hint="give each flow its own slug",
            )
        seen.add(flow.slug)
