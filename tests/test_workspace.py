"""A workspace shared by CTAs: a full reduction's last-CTA protocol. Each CTA stores its part in a
module-scope global, releases it (a fence at GPU scope) and arrives (one thread adds one to a
counter); the CTA that finds the count of all the others reads every part after its acquire and
sets the counter back to 0. The prover models the arrival (one CTA, symbolic, is the last), checks
the protocol as an obligation of its own, and follows the parts' values to the CTAs that stored
them where the launch's threads can be followed one by one; each break of the protocol is refuted
naming its line."""

from __future__ import annotations

import pytest

from ir import parse
from ir.kernel import Kernel
from ptxgen.lower import default_schedule, lower
from ptxgen.targets import TARGETS
from verify import prove as prove_module
from verify.emulate import Launch
from verify.prove import NO_RACE, VALUES, WORKSPACE, Obligation, prove_kernel, verdict

H100 = TARGETS["sm_90a"]


def full_sum(elements: int) -> Kernel:
    return parse(f"kernel k(%x: f32[{elements}]) -> (%y: f32[]) {{\n  %y = sum(%x, axes=[0])\n  return %y\n}}")


ONE_CTA = full_sum(4096)  # the default schedule launches one CTA of 512 threads
FEW_CTAS = full_sum(20000)  # 3 CTAs of 512 threads, a tail
MANY_CTAS = full_sum(1000003)  # 264 CTAs of 512 threads: more than are followed one by one


def lowered(kernel: Kernel) -> tuple[str, Launch]:
    result = lower(kernel, default_schedule(kernel, H100), H100)
    return result.ptx, Launch.of(result.launch)


def proved(kernel: Kernel, ptx: str, launch: Launch) -> dict[str, Obligation]:
    return {o.name: o for o in prove_kernel(ptx, launch, kernel)}


def without_line(ptx: str, fragment: str, occurrence: int = 0) -> str:
    """The kernel with the `occurrence`-th line holding `fragment` dropped."""
    lines = ptx.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if fragment in line]
    assert len(found) > occurrence, f"{fragment!r} is not in the kernel {occurrence + 1} time(s)"
    del lines[found[occurrence]]
    return "".join(lines)


def edited(ptx: str, old: str, new: str) -> str:
    assert old in ptx, f"{old!r} is not in the kernel: the table is out of date"
    return ptx.replace(old, new, 1)


def test_a_full_reduction_in_one_cta_is_proved_through_its_workspace() -> None:
    obligations = proved(ONE_CTA, *lowered(ONE_CTA))
    assert verdict(list(obligations.values())) == "proved", [o for o in obligations.values() if o.status != "proved"]
    assert "the last CTA reads 1 time(s)" in obligations[WORKSPACE].detail
    assert "the workspace k_partials written at most once" in obligations
    assert "modulo the order of accumulation" in obligations[VALUES].detail


def test_across_few_ctas_the_values_are_followed_to_the_parts_each_cta_left() -> None:
    ptx, launch = lowered(FEW_CTAS)
    assert launch.ctas == 3
    obligations = proved(FEW_CTAS, ptx, launch)
    assert verdict(list(obligations.values())) == "proved", [o for o in obligations.values() if o.status != "proved"]
    assert "modulo the order of accumulation" in obligations[VALUES].detail


def test_across_many_ctas_the_protocol_is_proved_and_the_values_are_left_open_saying_why() -> None:
    ptx, launch = lowered(MANY_CTAS)
    assert launch.ctas * launch.threads > prove_module.THREADS_FOLLOWED["workspace"]
    obligations = proved(MANY_CTAS, ptx, launch)
    assert all(o.status == "proved" for name, o in obligations.items() if name != VALUES), \
        [o for o in obligations.values() if o.status != "proved"]
    assert obligations[VALUES].status == "inconclusive"
    assert f"the parts {launch.ctas} CTAs left in the workspace" in obligations[VALUES].detail
    assert "followed thread by thread through launches of at most" in obligations[VALUES].detail


# The last CTA's sum of the parts gone wrong: (how the PTX is broken, what the refutation says).
WRONG_SUMS = {
    "a_part_left_out": (lambda p: edited(p, "setp.lt.u32 %p8, %r41, 3;", "setp.lt.u32 %p8, %r41, 2;"),
                        "misses"),
    "one_part_taken_by_every_reader": (lambda p: edited(p, "mad.wide.u32 %rd11, %r42, 8, %rd8;",
                                                        "mad.wide.u32 %rd11, %r42, 0, %rd8;"), "more than once"),
    "a_warp_left_out_of_each_part": (lambda p: without_line(p, "add.rn.f32 %f25, %f25, %f41;"), "misses"),
}


@pytest.mark.parametrize("name", sorted(WRONG_SUMS))
def test_a_wrong_sum_of_the_parts_of_few_ctas_is_refuted(name: str) -> None:
    broken, fragment = WRONG_SUMS[name]
    ptx, launch = lowered(FEW_CTAS)
    obligations = proved(FEW_CTAS, broken(ptx), launch)
    assert obligations[VALUES].status == "refuted" and fragment in obligations[VALUES].detail, obligations[VALUES]


# Breaks of the protocol: (kernel, how the PTX is broken, what the refutation says).
BROKEN = {
    "part_not_released": (MANY_CTAS, lambda p: without_line(p, "fence.acq_rel.gpu", 0),
                          "a workspace store not released before the arrival"),
    "parts_not_acquired": (MANY_CTAS, lambda p: without_line(p, "fence.acq_rel.gpu", 1),
                           "a workspace load that no arrival orders after the other CTAs' stores"),
    "counter_not_reset": (MANY_CTAS, lambda p: without_line(p, "st.global.u32 [%rd9], 0"),
                          "not set back to 0"),
    # thread 5 stores and fences its part; thread 0 arrives with no fence after a barrier: nothing orders them
    "part_of_another_thread_not_released": (
        MANY_CTAS, lambda p: edited(edited(edited(p, ".reg .pred %p<13>;", ".reg .pred %p<14>;"),
                                           "\t@%p5 st.global.f32 [%rd10+0]",
                                           "\tsetp.eq.u32 %p13, %r0, 5;\n\t@%p13 st.global.f32 [%rd10+0]"),
                                    "@%p5 fence.acq_rel.gpu;", "@%p13 fence.acq_rel.gpu;"),
        "a workspace store not released before the arrival"),
    "counter_reset_by_no_thread": (
        MANY_CTAS, lambda p: edited(p, "setp.eq.u32 %p10, %r0, 0;", "setp.eq.u32 %p10, %r0, 600;"),
        "does not always set the arrival counter back to 0"),
    "every_thread_arrives": (MANY_CTAS, lambda p: edited(p, "@%p5 atom.global", "atom.global"),
                             "the arrival is made by more than one thread"),
    "the_wrong_cta_reads": (MANY_CTAS, lambda p: edited(p, "setp.eq.u32 %p6, %r22, 263", "setp.eq.u32 %p6, %r22, 262"),
                             "may store there (line 125: st.global.f32): a data race"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_protocol_is_refuted_naming_its_line(name: str) -> None:
    kernel, broken, fragment = BROKEN[name]
    ptx, launch = lowered(kernel)
    obligations = proved(kernel, broken(ptx), launch)
    assert obligations[WORKSPACE].status == "refuted" and fragment in obligations[WORKSPACE].detail, \
        obligations[WORKSPACE]
    assert "line " in obligations[WORKSPACE].detail


def test_in_a_launch_of_one_cta_the_fences_order_nothing_another_cta_could_see() -> None:
    ptx, launch = lowered(ONE_CTA)
    obligations = proved(ONE_CTA, without_line(without_line(ptx, "fence.acq_rel.gpu", 1), "fence.acq_rel.gpu", 0),
                         launch)
    assert verdict(list(obligations.values())) == "proved", [o for o in obligations.values() if o.status != "proved"]


def test_ctas_that_share_one_slot_are_refuted_by_the_workspace_written_at_most_once() -> None:
    ptx, launch = lowered(MANY_CTAS)
    one_slot = edited(ptx, "mad.wide.u32 %rd10, %r21, 8, %rd8", "mad.wide.u32 %rd10, %r21, 0, %rd8")
    obligations = proved(MANY_CTAS, one_slot, launch)
    overlap = obligations["the workspace k_partials written at most once"]
    assert overlap.status == "refuted" and "is written by thread 0 of CTA" in overlap.detail, overlap


def test_the_flag_read_before_its_barrier_is_a_race() -> None:
    ptx, launch = lowered(ONE_CTA)
    flag = ptx.index("st.shared.u32 [%r2+128]")
    barrier = ptx.index("bar.sync 0;", flag)
    obligations = proved(ONE_CTA, ptx[:barrier] + ptx[barrier + len("bar.sync 0;"):], launch)
    assert obligations[NO_RACE].status == "refuted", obligations[NO_RACE]


def test_a_part_the_last_cta_takes_twice_is_refuted_by_the_values() -> None:
    ptx, launch = lowered(ONE_CTA)
    second = ptx.index("[%r2+8]", ptx.index("ld.relaxed.gpu.global.f32"))  # the last CTA's warp 1, read as warp 0
    values = proved(ONE_CTA, ptx[:second] + "[%r2+0]" + ptx[second + len("[%r2+8]"):], launch)[VALUES]
    assert values.status == "refuted" and "more than once" in values.detail, values


def test_atomics_other_than_an_arrival_are_left_inconclusive() -> None:
    ptx, launch = lowered(ONE_CTA)
    obligations = proved(ONE_CTA, edited(ptx, "@%p5 atom.global.add.u32 %r38, [%rd9], 1",
                                         "@%p5 atom.global.add.u32 %r38, [%rd9], 2"), launch)
    (only,) = obligations.values()
    assert only.status == "inconclusive" and "of atomics only a CTA's arrival" in only.detail


def test_a_fault_that_rests_on_an_undecided_query_is_left_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    def undecided(tile: prove_module.Tile, condition: object) -> None:  # the solver gave up on every pin
        tile.protocol.undecided = True

    monkeypatch.setattr(prove_module, "_pinned", undecided)
    obligations = proved(MANY_CTAS, *lowered(MANY_CTAS))
    assert obligations[WORKSPACE].status == "inconclusive", obligations[WORKSPACE]
    assert "was not decided" in obligations[WORKSPACE].detail
