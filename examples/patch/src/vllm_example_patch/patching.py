"""A small framework for surgical patches on vLLM classes: the part of the repository's
`vllm_ref_common.patching` that this example needs, cut down to read in one sitting.

A patch is a class that is never instantiated. It names its target and marks its methods:
@override replaces a method the target has (with the same parameters), @add gives the target
one it does not have yet. apply() checks every method before it changes anything and raises
PatchDriftError, naming the target, the method and the vLLM version, where vLLM no longer looks
like what the patch was written against; remove() puts the target back as it was.

The marked functions are installed on the target as they are, so `self` is the target's
instance (the Scheduler), never the patch; `Patch.original(name)` is the method it replaced.

Left out here, kept in the full framework: several patches stacked on one method and removed
in any order, selection by name (REF_PATCHES), process roles, module-level targets.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

_KIND = "__ref_patch_kind__"
_MISSING: Any = object()


class PatchError(RuntimeError):
    """A patch could not be applied or removed."""


class PatchDriftError(PatchError):
    """The target no longer looks like what the patch was written against."""


def override(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn` as replacing a method (or function) the target already has."""
    setattr(fn, _KIND, "override")
    return fn


def add(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn` as a new method (or function) the target must not have yet."""
    setattr(fn, _KIND, "add")
    return fn


class Patch:
    """Base class of patches; subclass it, never instantiate it."""

    name: ClassVar[str] = ""
    target: ClassVar[str] = ""  # "module:Class"

    @classmethod
    def methods(cls) -> dict[str, tuple[str, Any]]:
        """name -> (kind, function) for every @override / @add member."""
        return {attr: (getattr(fn, _KIND), fn) for attr, fn in vars(cls).items() if getattr(fn, _KIND, None)}

    @classmethod
    def original(cls, name: str) -> Any:
        """The method this patch replaced for `name` (call it with `self`)."""
        try:
            return _applied[cls].originals[name]
        except KeyError:
            raise PatchError(f"{cls.name}: no original for {name!r}: the patch is not applied "
                             f"or does not override {name!r}") from None

    @classmethod
    def installed(cls) -> bool:
        """Applied in this process, and the target still runs it (nothing replaced it since)."""
        done = _applied.get(cls)
        return done is not None and all(vars(done.target).get(n) is fn for n, (_, fn) in cls.methods().items())


class _Applied:
    def __init__(self, target: type, originals: dict[str, Any], own: dict[str, Any]) -> None:
        self.target = target        # the class patched
        self.originals = originals  # name -> what `original` returns
        self.own = own              # name -> the class's own attribute before, or _MISSING (inherited)


_applied: dict[type[Patch], _Applied] = {}


def _vllm_version() -> str:
    try:
        from vllm import __version__
    except ImportError:
        return "(not importable)"
    return __version__


def _signature_drift(patch_fn: Any, original: Any, is_method: bool) -> str | None:
    """Why patch_fn's parameters do not fit original's, or None.

    Names and kinds must match (annotations and defaults may differ). A patch written as
    `(self, *args, **kwargs)` accepts any signature and is not compared.
    """
    fn = getattr(patch_fn, "__func__", patch_fn)
    orig = getattr(original, "__func__", original)
    try:
        mine = list(inspect.signature(fn).parameters.values())
        theirs = list(inspect.signature(orig).parameters.values())
    except (TypeError, ValueError):
        return None  # builtins without signatures: nothing to compare
    if is_method:
        mine, theirs = mine[1:], theirs[1:]
    kinds = [p.kind for p in mine]
    if kinds == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        return None
    if [(p.name, p.kind) for p in mine] != [(p.name, p.kind) for p in theirs]:
        fmt = lambda ps: "(" + ", ".join(p.name for p in ps) + ")"  # noqa: E731
        return f"expects parameters {fmt(mine)} but the target has {fmt(theirs)}"
    return None


def apply(patch: type[Patch]) -> bool:
    """Apply `patch` in this process; True if it was applied now, False if it already was.

    Raises PatchDriftError, changing nothing, when a method to override is missing or its
    parameters changed, or a method to add exists already.
    """
    if patch in _applied:
        return False
    module, _, qualname = patch.target.partition(":")
    where = f"{patch.target} (vLLM {_vllm_version()})"
    try:
        target = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as exc:
        raise PatchDriftError(f"patch {patch.name}: target {where} not found: {exc}") from exc
    methods = patch.methods()
    for name, (kind, fn) in methods.items():
        current = getattr(target, name, _MISSING)
        if kind == "add" and current is not _MISSING:
            raise PatchDriftError(f"patch {patch.name} adds {name!r}, but {where} already has one")
        if kind == "override" and current is _MISSING:
            raise PatchDriftError(f"patch {patch.name} overrides {name!r}, but {where} has no such attribute")
        why = kind == "override" and _signature_drift(fn, current, is_method=True)
        if why:
            raise PatchDriftError(f"patch {patch.name} overrides {name!r} of {where}, but the signature "
                                  f"changed: it {why}")
    _applied[patch] = _Applied(target, {n: getattr(target, n) for n, (k, _) in methods.items() if k == "override"},
                               {n: vars(target).get(n, _MISSING) for n in methods})
    for name, (_, fn) in methods.items():
        setattr(target, name, fn)
    return True


def remove(patch: type[Patch]) -> bool:
    """Undo `patch`; True if it was applied. Refuses (PatchError) where something else has
    replaced one of its methods since: undoing it would drop that too."""
    done = _applied.get(patch)
    if done is None:
        return False
    if not patch.installed():
        raise PatchError(f"cannot remove patch {patch.name}: {patch.target} was patched again on top of it")
    for name, before in done.own.items():
        if before is _MISSING:
            delattr(done.target, name)
        else:
            setattr(done.target, name, before)
    del _applied[patch]
    return True
