"""The patching framework against small stand-in targets (no engine)."""

import logging
import multiprocessing
import sys
import threading
import types

import pytest
import vllm_ref_common
from vllm_ref_common import patching
from vllm_ref_common.patching import Patch, PatchDriftError, PatchError, add, override


class Base:
    def greet(self, who):
        return f"base hello {who}"


class Counter(Base):
    def __init__(self):
        self.count = 0
        self.trace = []

    def bump(self, by, *, note=""):
        self.trace.append("orig")
        self.count += by
        return self.count

    @staticmethod
    def kind():
        return "static"

    @classmethod
    def make(cls):
        return cls()


def helper(x):
    return x + 1


@pytest.fixture
def target(monkeypatch):
    """A fresh module `ref_fake_target` holding a fresh copy of the classes above."""
    mod = types.ModuleType("ref_fake_target")
    mod.Base = type("Base", (), dict(vars(Base)))
    ns = {k: v for k, v in vars(Counter).items() if k not in ("__dict__", "__weakref__")}
    ns["__module__"] = "ref_fake_target"
    mod.Counter = type("Counter", (mod.Base,), ns)
    mod.helper = helper
    monkeypatch.setitem(sys.modules, "ref_fake_target", mod)
    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    yield mod
    for p in list(patching._applied):
        if patching._applied[p] in (mod, mod.Counter, mod.Base):
            patching.remove(p)


def make_bump_patch(label):
    class P(Patch):
        name = label
        target = "ref_fake_target:Counter"

        @override
        def bump(self, by, *, note=""):
            self.trace.append(label)
            return P.original("bump")(self, by * 10, note=note)

    return P


def test_self_is_the_target_instance_and_the_patch_changes_its_state(target):
    class Double(Patch):
        target = "ref_fake_target:Counter"

        @override
        def bump(self, by, *, note=""):
            assert isinstance(self, target.Counter)
            before = self.count  # reads the target's own state
            result = Double.original("bump")(self, by)
            self.count += before  # and changes it
            return result

        @add
        def ref_reset(self):
            self.count = 0

    c = target.Counter()
    c.count = 5
    assert patching.apply(Double) is True
    assert c.bump(1) == 6 and c.count == 11
    c.ref_reset()
    assert c.count == 0


def test_apply_is_idempotent_and_queryable(target):
    P = make_bump_patch("p")
    assert patching.apply(P) is True
    assert patching.apply(P) is False
    c = target.Counter()
    c.bump(1)
    assert c.trace == ["p", "orig"]  # wrapped once, not twice
    assert "p" in patching.applied_patches() and patching.is_applied(P)
    assert patching.remove(P) is True and patching.remove(P) is False
    assert "p" not in patching.applied_patches()


def test_remove_restores_exact_attributes_including_inherited_and_descriptors(target):
    own = vars(target.Counter)
    bump, kind, make = own["bump"], own["kind"], own["make"]

    class P(Patch):
        target = "ref_fake_target:Counter"

        @override
        def bump(self, by, *, note=""):
            return 0

        @override
        def greet(self, who):  # inherited from Base, not defined on Counter
            return "patched " + P.original("greet")(self, who)

        @staticmethod
        @override
        def kind():
            return "patched"

        @add
        def extra(self):
            return 1

    patching.apply(P)
    c = target.Counter()
    assert c.greet("x") == "patched base hello x" and target.Counter.kind() == "patched" and c.extra() == 1
    patching.remove(P)
    assert own["bump"] is bump and own["kind"] is kind and own["make"] is make
    assert "greet" not in own and target.Counter.greet is vars(target.Base)["greet"]
    assert "extra" not in own and not hasattr(target.Counter, "extra")


def test_patches_compose_last_applied_outermost_and_any_layer_can_be_removed(target):
    first, second = make_bump_patch("first"), make_bump_patch("second")
    original = vars(target.Counter)["bump"]
    patching.apply(first)
    patching.apply(second)
    c = target.Counter()
    assert c.bump(1) == 100  # both layers multiplied by 10
    assert c.trace == ["second", "first", "orig"]
    patching.remove(first)  # the inner layer: second now wraps vLLM's own method directly
    c.trace.clear()
    assert c.bump(1) == 110 and c.trace == ["second", "orig"]
    patching.remove(second)
    assert vars(target.Counter)["bump"] is original


def test_module_level_function(target):
    class P(Patch):
        target = "ref_fake_target"

        @override
        def helper(x):
            return P.original("helper")(x) * 2

    patching.apply(P)
    assert target.helper(1) == 4
    patching.remove(P)
    assert target.helper is helper


def test_drift_missing_method_names_target_method_and_version(target, monkeypatch):
    monkeypatch.setattr(patching, "vllm_version", lambda: "0.32.0")

    # Deliberately the same valid bump override as in the removal test above: each test's patch
    # class stands alone, and only its second method differs.
    class P(Patch):
        target = "ref_fake_target:Counter"

        @override
        def bump(self, by, *, note=""):
            return 0

        @override
        def vanished(self):
            return 0

    with pytest.raises(PatchDriftError) as err:
        patching.apply(P)
    msg = str(err.value)
    assert "ref_fake_target:Counter" in msg and "'vanished'" in msg and "vLLM 0.32.0" in msg
    assert vars(target.Counter)["bump"] is vars(Counter)["bump"]  # nothing half-applied
    assert not patching.is_applied(P)


def test_drift_signature_change_and_add_of_existing(target, monkeypatch):
    monkeypatch.setattr(patching, "vllm_version", lambda: "0.33.0rc1")

    class Sig(Patch):
        target = "ref_fake_target:Counter"

        @override
        def bump(self, amount):
            return 0

    with pytest.raises(PatchDriftError, match=r"'bump' of ref_fake_target:Counter \(vLLM 0.33.0rc1\).*"
                                              r"\(amount\).*\(by, note\)"):
        patching.apply(Sig)

    class Dup(Patch):
        target = "ref_fake_target:Counter"

        @add
        def greet(self, who):
            return ""

    with pytest.raises(PatchDriftError, match="adds 'greet'.*already has one"):
        patching.apply(Dup)

    class Missing(Patch):
        target = "ref_fake_target:Gone"

        @add
        def x(self):
            return 0

    with pytest.raises(PatchDriftError, match="ref_fake_target:Gone not found in vLLM 0.33.0rc1"):
        patching.apply(Missing)


def test_concurrent_apply_installs_exactly_once(target):
    P = make_bump_patch("racy")
    results, barrier = [], threading.Barrier(16)

    def go():
        barrier.wait()
        results.append(patching.apply(P))

    threads = [threading.Thread(target=go) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    c = target.Counter()
    c.bump(1)
    assert c.trace == ["racy", "orig"]


def test_remove_refuses_when_someone_else_replaced_the_method(target):
    P = make_bump_patch("p")
    patching.apply(P)
    target.Counter.bump = lambda self, by, note="": 0
    with pytest.raises(PatchError, match="outside the patch framework"):
        patching.remove(P)
    target.Counter.bump = P.__dict__["bump"]  # put ours back so the fixture can clean up


def test_selection_env_and_unknown_name_warning(target, monkeypatch, caplog):
    a, b = make_bump_patch("sel_a"), make_bump_patch("sel_b")
    b.target = "ref_fake_target:Counter"
    monkeypatch.setenv("REF_PATCHES", "sel_b, typo_x")
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert patching.apply_selected([a, b]) == ["sel_b"]
        patching.apply_selected([a, b])
    warnings = [r.getMessage() for r in caplog.records if "typo_x" in r.getMessage()]
    assert len(warnings) == 1
    assert "sel_a" in warnings[0] and "sel_b" in warnings[0]
    # Patches other installed packages declare count as known too (vllm-ref-scheduler's here).
    import importlib.metadata as md

    assert all(ep.name in warnings[0] for ep in md.entry_points(group=patching.ENTRY_POINT_GROUP))
    patching.remove(b)
    monkeypatch.setenv("REF_PATCHES", "*")
    assert patching.apply_selected([a]) == ["sel_a"]
    patching.remove(a)
    monkeypatch.delenv("REF_PATCHES")
    assert patching.apply_selected([a]) == ["sel_a"]
    patching.remove(a)
    monkeypatch.setenv("REF_PATCHES", "")
    assert patching.apply_selected([a]) == []


def test_role_scoped_patch_skipped_outside_its_roles(target, monkeypatch):
    P = make_bump_patch("engine_only")
    P.roles = ("engine_core",)
    monkeypatch.delenv("REF_PATCHES", raising=False)
    assert patching.apply_selected([P]) == []  # pytest runs as MainProcess: the front end
    monkeypatch.setattr(multiprocessing.current_process(), "name", "EngineCore")
    assert patching.apply_selected([P]) == ["engine_only"]




def test_installed_means_applied_and_still_on_the_target(target, monkeypatch):
    P = make_bump_patch("inst")
    monkeypatch.delenv("REF_PATCHES", raising=False)
    assert not P.installed()
    patching.apply(P)
    assert P.installed()
    owner = patching._applied[P]
    name = next(iter(P.methods()))
    ours = vars(owner)[name]
    setattr(owner, name, lambda self, *a, **k: None)  # replaced behind the framework's back
    assert not P.installed()
    setattr(owner, name, ours)
    patching.remove(P)
    assert not P.installed()


def test_the_foreign_selection_name_is_not_read_and_says_so(target, monkeypatch, caplog):
    # VLLM_CUSTOM_PATCHES is what a convention elsewhere uses; a VLLM_* name breaks
    # --fail-on-environ-validation, so this framework reads REF_PATCHES only.
    import vllm_ref_common

    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    monkeypatch.delenv("REF_PATCHES", raising=False)
    monkeypatch.setenv("VLLM_CUSTOM_PATCHES", "nothing")
    P = make_bump_patch("foreign")
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert patching.apply_selected([P]) == ["foreign"]  # unset REF_PATCHES: all
    assert any("VLLM_CUSTOM_PATCHES is set but not read" in r.getMessage() for r in caplog.records)
    patching.remove(P)
