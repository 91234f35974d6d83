"""Real `vllm serve` (two boots): the fair-share patch against the same engine without it."""

import openai
import pytest
from vllm_ref_scheduler.testing import post, run_contended

pytestmark = pytest.mark.vllm

CHECKS = {"status": "vllm_ref_scheduler:status"}
ARGS = ["--max-num-seqs", "1", "--max-model-len", "2048"]
EQUAL = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b1", "B"), ("b2", "B")]
ROLES = ("front_end", "engine_core", "worker")


def serve(vllm, model, recorder_site, tmp_path, **env):
    """The server, with the recorder plugin (vllm_ref_scheduler.testing) writing the
    scheduler's admissions to `server.record`; stopped at the end of its
    class, so that the two servers never run at once."""
    record = tmp_path / "sched-record.jsonl"
    server = vllm.serve(model, args=ARGS, plugins=["ref_scheduler", "ref_sched_record"], checks=CHECKS,
                        timeout=600, env={"PYTHONPATH": recorder_site,
                                          "REF_SCHED_RECORD": str(record), **env,
                                          # /pause and /resume for the workload (run_contended)
                                          "VLLM_SERVER_DEV_MODE": "1"})
    server.record = record
    yield server
    server.stop()


@pytest.fixture(scope="class")
def patched(vllm_module, tiny_model, sched_recorder_site, tmp_path_factory):
    yield from serve(vllm_module, tiny_model, sched_recorder_site, tmp_path_factory.mktemp("patched"),
                     REF_SCHEDULER_WEIGHTS="gold=3")


@pytest.fixture(scope="class")
def unpatched(vllm_module, tiny_model, sched_recorder_site, tmp_path_factory):
    # The plugin is loaded, but REF_PATCHES selects none of its patches: only the
    # recorder's (another package's patch, selected by name).
    yield from serve(vllm_module, tiny_model, sched_recorder_site, tmp_path_factory.mktemp("unpatched"),
                     REF_PATCHES="sched_record")


class TestPatched:
    def test_patches_live_where_their_roles_say(self, patched):
        rep = patched.wait_for_check("status", ROLES, timeout=120)
        rep.assert_loaded("ref_scheduler", roles=ROLES)
        rep.assert_check("status", lambda s: s["scheduler"] and not s["validation"], roles=("engine_core",))
        rep.assert_check("status", lambda s: s["validation"] and not s["scheduler"], roles=("front_end",))
        rep.assert_check("status", False, roles=("worker",))
        # The test recorder's patch (vllm_ref_scheduler.testing) sits beside fair_share on Scheduler.
        patches = lambda want: lambda s: s["patches"] == want  # noqa: E731
        rep.assert_check("status", patches(["fair_share", "sched_record"]), roles=("engine_core",))
        rep.assert_check("status", patches(["fair_share_validation"]), roles=("front_end",))
        rep.assert_check("status", patches([]), roles=("worker",))

    def test_equal_weights_interleave_tenants(self, patched):
        assert run_contended(patched, EQUAL) == ["a1", "b1", "a2", "b2", "a3", "a4"]

    def test_weights_share_in_proportion(self, patched):
        work = [("f1", "free"), ("f2", "free"), ("f3", "free"),
                ("g1", "gold"), ("g2", "gold"), ("g3", "gold"), ("g4", "gold")]
        assert run_contended(patched, work) == ["f1", "g1", "g2", "g3", "f2", "g4", "f3"]

    @pytest.mark.parametrize("value", [42, "two words", ["A"], ""])
    def test_bad_tenant_is_a_400_for_that_request_only(self, patched, value):
        client = patched.client(max_retries=0)
        with pytest.raises(openai.BadRequestError) as err:
            client.completions.create(model=patched.model, prompt="hi", max_tokens=2,
                                      extra_body={"vllm_xargs": {"ref_tenant": value}})
        assert "ref_tenant" in str(err.value) and "ref_scheduler" in str(err.value)
        ok = client.completions.create(model=patched.model, prompt="hi", max_tokens=2,
                                       extra_body={"vllm_xargs": {"ref_tenant": "A"}})
        assert ok.choices[0].finish_reason == "length"

    def test_chat_endpoint_validates_too(self, patched):
        body = {"model": patched.model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
        bad = post(patched, "/v1/chat/completions", {**body, "vllm_xargs": {"ref_tenant": 3.5}})
        assert bad.status_code == 400 and "ref_tenant" in bad.text
        good = post(patched, "/v1/chat/completions", {**body, "vllm_xargs": {"ref_tenant": "A"}})
        assert good.status_code == 200


class TestUnpatched:
    def test_no_patch_anywhere(self, unpatched):
        rep = unpatched.wait_for_check("status", ROLES, timeout=120)
        rep.assert_loaded("ref_scheduler", roles=ROLES)
        rep.assert_check("status", False, roles=ROLES)
        # The test's recorder only.
        rep.assert_check("status", lambda s: s["patches"] == ["sched_record"], roles=("engine_core",))
        rep.assert_check("status", lambda s: s["patches"] == [], roles=("front_end", "worker"))

    def test_same_workload_is_first_come_first_served(self, unpatched):
        assert run_contended(unpatched, EQUAL) == ["a1", "a2", "a3", "a4", "b1", "b2"]

    def test_bad_tenant_goes_unchecked(self, unpatched):
        r = post(unpatched, "/v1/completions", {"model": unpatched.model, "prompt": "hi", "max_tokens": 2,
                                                 "vllm_xargs": {"ref_tenant": 42}})
        assert r.status_code == 200
