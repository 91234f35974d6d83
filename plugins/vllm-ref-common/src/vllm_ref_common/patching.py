"""Surgical patches on vLLM classes and modules: apply, compose, remove, select, scope.

A patch is a class that is never instantiated. It names its target and lists methods:

    class CountSteps(Patch):
        name = "count_steps"
        target = "vllm.v1.core.sched.scheduler:Scheduler"   # "module:Class", or "module" for functions
        roles = ("engine_core",)                            # None = every process

        @override
        def schedule(self, *args, **kwargs):
            self.ref_steps = getattr(self, "ref_steps", 0) + 1   # self is the Scheduler
            return CountSteps.original("schedule")(self, *args, **kwargs)

        @add
        def ref_step_count(self) -> int:
            return getattr(self, "ref_steps", 0)

The decorated functions are installed on the target as they are, so Python binds them to the
target's instances: `self` is the Scheduler, never the patch. `Patch.original(name)` is the
implementation this patch wraps (call it with `self` for methods).

Composition: patches on one method stack in the order they are applied; the last applied runs
first and its `original` is the one applied before it. Removing any layer splices it out and
leaves the others working; removing the last restores the target's attribute exactly (or
deletes it, where the target had inherited the method instead of defining it).

The framework lives in vllm-ref-common, the runtime package every plugin depends on: the
scheduler's fair-share policy and the endpoint plugin's engine-side methods are applied with it.
examples/patch vendors this file (its import lines changed); examples/test_vendored.py keeps the
copy identical otherwise.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .gate import vllm_version, warn_once
from .roles import process_roles

__all__ = [
    "ENV_SELECT", "Patch", "PatchDriftError", "PatchError", "add", "applied_patches", "apply",
    "apply_selected", "is_applied", "known_patch_names", "override", "remove",
]

logger = logging.getLogger("vllm_ref.patching")

# Not VLLM_CUSTOM_PATCHES, the name a patching convention elsewhere uses: vLLM treats every
# VLLM_* variable as its own and refuses unknown ones with --fail-on-environ-validation.
ENV_SELECT = "REF_PATCHES"
_FOREIGN_SELECT = "VLLM_CUSTOM_PATCHES"
ENTRY_POINT_GROUP = "vllm_ref.patches"

_MISSING: Any = object()
_KIND = "__ref_patch_kind__"
_lock = threading.RLock()


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
    target: ClassVar[str] = ""
    roles: ClassVar[tuple[str, ...] | None] = None

    @classmethod
    def patch_name(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def methods(cls) -> dict[str, tuple[str, Any]]:
        """name -> (kind, the raw class-dict value) for every @override / @add member."""
        out = {}
        for attr, raw in vars(cls).items():
            fn = getattr(raw, "__func__", raw)  # staticmethod / classmethod wrappers
            kind = getattr(fn, _KIND, None)
            if kind:
                out[attr] = (kind, raw)
        return out

    @classmethod
    def original(cls, name: str) -> Any:
        """What this patch wraps for `name`: the layer below it, or the target's own one."""
        try:
            nxt = _next[cls][name]
        except KeyError:
            raise PatchError(f"{cls.patch_name()}: no original for {name!r}: the patch is not applied "
                             f"or does not override {name!r}") from None
        if isinstance(nxt, _Inherited):
            return nxt.lookup()
        return nxt

    @classmethod
    def installed(cls) -> bool:
        """Applied in this process, and the target still runs it: each method's attribute is
        the top of its chain of patches (nothing outside the framework replaced it)."""
        with _lock:
            target = _applied.get(cls)
            if target is None:
                return False
            for name in cls.methods():
                chain = _chains.get((id(target), name))
                now = vars(target).get(name) if isinstance(target, type) else getattr(target, name, None)
                if chain is None or now is not chain.layers[-1][1]:
                    return False
            return True



# --- bookkeeping -------------------------------------------------------------------------------

@dataclass
class _Inherited:
    """The original of a method the target inherited: looked up along the MRO at call time."""

    owner: type
    name: str

    def lookup(self) -> Any:
        for klass in self.owner.__mro__[1:]:
            if self.name in vars(klass):
                return vars(klass)[self.name]
        raise AttributeError(f"{self.owner.__qualname__} no longer inherits {self.name!r}")


@dataclass
class _Chain:
    """The layers installed on one attribute of one target, innermost first."""

    target: Any
    name: str
    base: Any  # the target's own raw attribute, or _MISSING where it had none of its own
    layers: list[tuple[type[Patch], Any]] = field(default_factory=list)

    def relink(self) -> None:
        below: Any = self.base
        if below is _MISSING and isinstance(self.target, type):
            below = _Inherited(self.target, self.name)
        for patch, raw in self.layers:
            if below is not _MISSING:
                _next.setdefault(patch, {})[self.name] = below
            below = raw


_chains: dict[tuple[int, str], _Chain] = {}
_applied: dict[type[Patch], Any] = {}           # patch -> its target object
_next: dict[type[Patch], dict[str, Any]] = {}   # patch -> method -> what `original` returns
_known: dict[str, type[Patch]] = {}


def _running_version() -> str:
    return vllm_version() or "unknown (vLLM not importable)"


def _resolve(patch: type[Patch]) -> Any:
    module_name, _, qualname = patch.target.partition(":")
    if not module_name:
        raise PatchError(f"{patch.patch_name()}: `target` must be 'module:Class' or 'module', got "
                         f"{patch.target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, qualname.split(".")):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PatchDriftError(f"{patch.patch_name()}: target {patch.target} not found in vLLM "
                              f"{_running_version()}: {exc}") from exc
    return obj


def _describe(target: Any) -> str:
    if isinstance(target, type):
        return f"{target.__module__}.{target.__qualname__}"
    return getattr(target, "__name__", repr(target))


def _raw_attr(target: Any, name: str) -> Any:
    """The attribute as stored (staticmethod/classmethod objects included), or _MISSING."""
    if isinstance(target, type):
        for klass in target.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
        return _MISSING
    return getattr(target, name, _MISSING)


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


# --- apply / remove ----------------------------------------------------------------------------

def apply(patch: type[Patch]) -> bool:
    """Apply `patch` in this process; True if it was applied now, False if it already was.

    Raises PatchDriftError, changing nothing, when a method to override is missing or its
    signature changed, or a method to add exists. The vLLM range is the plugin's (its version
    gate runs before it applies anything); roles are not consulted here: apply_selected() does.
    """
    with _lock:
        if patch in _applied:
            return False
        target = _resolve(patch)
        is_class = isinstance(target, type)
        methods = patch.methods()
        if not methods:
            raise PatchError(f"{patch.patch_name()}: no @override or @add members")
        where = f"{patch.target} (vLLM {_running_version()})"
        for name, (kind, raw) in methods.items():
            current = _raw_attr(target, name)
            if kind == "override":
                if current is _MISSING:
                    raise PatchDriftError(f"patch {patch.patch_name()} overrides {name!r}, but {where} "
                                          f"has no such attribute")
                # Compare with vLLM's own method, not with a patch layered on it earlier.
                chain = _chains.get((id(target), name))
                reference = current
                if chain is not None:
                    inherited = chain.base is _MISSING
                    reference = _Inherited(target, name).lookup() if inherited else chain.base
                why = _signature_drift(raw, reference, is_class and not isinstance(reference, staticmethod))
                if why:
                    raise PatchDriftError(f"patch {patch.patch_name()} overrides {name!r} of {where}, "
                                          f"but the signature changed: it {why}")
            elif current is not _MISSING:
                raise PatchDriftError(f"patch {patch.patch_name()} adds {name!r}, but {where} already "
                                      f"has one")
        for name, (_, raw) in methods.items():
            key = (id(target), name)
            chain = _chains.get(key)
            if chain is None:
                own = vars(target).get(name, _MISSING) if is_class else getattr(target, name, _MISSING)
                chain = _chains[key] = _Chain(target, name, own)
            chain.layers.append((patch, raw))
            setattr(target, name, raw)
            chain.relink()
        _applied[patch] = target
        _known.setdefault(patch.patch_name(), patch)
        logger.debug("applied patch %s to %s", patch.patch_name(), _describe(target))
        return True


def remove(patch: type[Patch]) -> bool:
    """Undo `patch`; True if it was applied. Other patches on the same methods keep working."""
    with _lock:
        target = _applied.get(patch)
        if target is None:
            return False
        for name in patch.methods():
            chain = _chains[(id(target), name)]
            top = chain.layers[-1][1]
            now = vars(target).get(name) if isinstance(target, type) else getattr(target, name, None)
            if now is not top:
                raise PatchError(f"cannot remove patch {patch.patch_name()}: {_describe(target)}.{name} "
                                 f"was replaced by something outside the patch framework")
        for name in patch.methods():
            key = (id(target), name)
            chain = _chains[key]
            chain.layers = [(p, raw) for p, raw in chain.layers if p is not patch]
            if chain.layers:
                setattr(target, name, chain.layers[-1][1])
                chain.relink()
            else:
                del _chains[key]
                if chain.base is _MISSING:
                    delattr(target, name)
                else:
                    setattr(target, name, chain.base)
        del _applied[patch]
        _next.pop(patch, None)
        return True


def is_applied(patch: type[Patch]) -> bool:
    return patch in _applied


def applied_patches() -> list[str]:
    """Names of the patches applied in this process, in the order they were applied."""
    with _lock:
        return [p.patch_name() for p in _applied]


# --- selection ---------------------------------------------------------------------------------

def known_patch_names() -> list[str]:
    """Patches seen in this process plus those installed packages declare (entry-point group
    `vllm_ref.patches`), so a typo in REF_PATCHES can be told from another package's patch."""
    names = set(_known)
    try:
        names.update(ep.name for ep in md.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # broken metadata must not stop vLLM
        pass
    return sorted(names)


def selection(env: Mapping[str, str] | None = None) -> set[str] | None:
    """The names REF_PATCHES selects; None means all (unset or "*")."""
    env = os.environ if env is None else env
    if _FOREIGN_SELECT in env and ENV_SELECT not in env:
        warn_once(f"{_FOREIGN_SELECT} is set but not read: this framework's selection is {ENV_SELECT} "
                  f"(a VLLM_* name makes vLLM refuse to start with --fail-on-environ-validation).")
    raw = env.get(ENV_SELECT)
    if raw is None or raw.strip() == "*":
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def apply_selected(patches: Iterable[type[Patch]]) -> list[str]:
    """Apply those of `patches` that REF_PATCHES selects and whose roles include this process's
    (vllm_ref_common.process_roles); return the names applied now. Unknown selected names log
    one warning."""
    patches = list(patches)
    with _lock:
        for p in patches:
            _known.setdefault(p.patch_name(), p)
        wanted = selection()
        if wanted is not None:
            known = known_patch_names()
            unknown = sorted(wanted - set(known))
            if unknown:
                warn_once(f"{ENV_SELECT}: unknown patch name(s) {', '.join(unknown)}; known patches: "
                          f"{', '.join(known) or '(none)'}")
        roles = process_roles()
        done = []
        for p in patches:
            if wanted is not None and p.patch_name() not in wanted:
                continue
            if p.roles is not None and not roles & set(p.roles):
                logger.debug("patch %s not applied: roles %s, this process is %s", p.patch_name(),
                             p.roles, sorted(roles))
                continue
            if apply(p):
                done.append(p.patch_name())
        return done
