"""Isolated calls: every way a child can end (result, exception, early exit, signal, hang, hang with
a grandchild, flood of output, result that is not JSON) becomes an Outcome, and no process survives."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from verify.isolate import REPO_ROOT, TAIL_BYTES, run_isolated, run_many

TARGETS = "tests.isolate_targets"
LIMIT_S = 1.0
MARGIN_S = 1.5  # interpreter start, the kill and the reaping


def target(name: str) -> str:
    return f"{TARGETS}:{name}"


def read_pid(path: Path) -> int:
    return int(path.read_text())


def assert_gone(pid: int) -> None:
    """Neither running nor a zombie: killed and reaped."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_result_comes_back_with_the_output_tail() -> None:
    outcome = run_isolated(target("echo"), {"n": 3, "names": ["a", "b"]}, LIMIT_S * 10)
    assert outcome.status == "ok", outcome.error
    assert outcome.result["kwargs"] == {"n": 3, "names": ["a", "b"]}
    assert outcome.result["nan"] != outcome.result["nan"]
    assert outcome.error is None
    assert "echo says hello" in outcome.stdout_tail
    assert 0 < outcome.seconds < LIMIT_S * 10


def test_the_child_sees_the_environment_and_the_repository() -> None:
    outcome = run_isolated(target("read_env"), {"name": "ISOLATE_PROBE"}, LIMIT_S * 10,
                           env={"ISOLATE_PROBE": "from the caller"})
    assert outcome.status == "ok", outcome.error
    assert outcome.result["value"] == "from the caller"
    assert outcome.result["pythonpath"].split(os.pathsep)[0] == str(REPO_ROOT)


def test_an_exception_is_an_error_with_its_message_and_traceback() -> None:
    outcome = run_isolated(target("raise_error"), {"message": "wrong shape (3, 4)"}, LIMIT_S * 10)
    assert outcome.status == "error"
    assert outcome.error.startswith("ValueError: wrong shape (3, 4)")
    assert "in raise_error" in outcome.error
    assert outcome.result is None


def test_a_missing_target_is_an_error() -> None:
    outcome = run_isolated("tests.no_such_module:f", {}, LIMIT_S * 10)
    assert outcome.status == "error"
    assert outcome.error.startswith("ModuleNotFoundError")


def test_an_early_exit_is_a_crash_with_its_code_and_stderr() -> None:
    outcome = run_isolated(target("exit_early"), {"code": 3}, LIMIT_S * 10)
    assert outcome.status == "crash"
    assert outcome.error.startswith("exited with code 3 before the target returned")
    assert "leaving early" in outcome.error


def test_sys_exit_zero_before_returning_is_a_crash() -> None:
    outcome = run_isolated(target("exit_cleanly"), {}, LIMIT_S * 10)
    assert outcome.status == "crash"
    assert outcome.error.startswith("exited with code 0 before the target returned")


def test_a_segfault_is_a_crash_naming_the_signal_and_where() -> None:
    outcome = run_isolated(target("segfault"), {}, LIMIT_S * 10)
    assert outcome.status == "crash"
    assert outcome.error.startswith("killed by SIGSEGV")
    assert "in segfault" in outcome.stderr_tail  # faulthandler's stacks


def test_a_crash_after_returning_is_a_crash_that_keeps_the_result() -> None:
    outcome = run_isolated(target("abort_after_returning"), {}, LIMIT_S * 10)
    assert outcome.status == "crash"
    assert outcome.error.startswith("killed by SIGABRT after the target returned")
    assert outcome.result == 7


def test_a_hang_times_out_within_the_limit_and_the_child_is_gone(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    begin = time.perf_counter()
    outcome = run_isolated(target("spin"), {"pid_file": str(pid_file)}, LIMIT_S)
    elapsed = time.perf_counter() - begin
    assert outcome.status == "timeout"
    assert f"limit of {LIMIT_S:g} s" in outcome.error
    assert LIMIT_S <= outcome.seconds <= elapsed < LIMIT_S + MARGIN_S
    assert "in spin" in outcome.stderr_tail  # the stacks printed near the limit
    assert_gone(read_pid(pid_file))


def test_a_hang_kills_the_grandchildren_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    outcome = run_isolated(target("hang_with_grandchild"), {"pid_file": str(pid_file)}, LIMIT_S)
    assert outcome.status == "timeout"
    assert_gone(read_pid(pid_file))


def test_grandchildren_left_behind_by_a_finished_child_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    outcome = run_isolated(target("leave_grandchild"), {"pid_file": str(pid_file)}, LIMIT_S * 10)
    assert outcome.status == "ok", outcome.error
    assert_gone(read_pid(pid_file))


def test_a_flood_of_output_keeps_only_a_bounded_tail() -> None:
    outcome = run_isolated(target("flood_stdout"), {"megabytes": 50}, LIMIT_S * 10)
    assert outcome.status == "ok", outcome.error
    assert outcome.result == 50
    assert outcome.stdout_tail.rstrip().endswith("END OF OUTPUT")
    assert outcome.stdout_tail.startswith("[5242") and " bytes before]\n" in outcome.stdout_tail
    assert len(outcome.stdout_tail) <= TAIL_BYTES + 64


def test_a_result_that_is_not_json_is_an_error() -> None:
    outcome = run_isolated(target("unserialisable"), {}, LIMIT_S * 10)
    assert outcome.status == "error"
    assert "not JSON-serialisable" in outcome.error
    assert outcome.result is None


def test_run_many_goes_on_after_failures(tmp_path: Path) -> None:
    jobs = [(target("echo"), {"i": 0}), (target("segfault"), {}), (target("raise_error"), {"message": "m"}),
            (target("spin"), {"pid_file": str(tmp_path / "pid")}), (target("echo"), {"i": 4})]
    outcomes = run_many(jobs, LIMIT_S)
    assert [o.status for o in outcomes] == ["ok", "crash", "error", "timeout", "ok"]
    assert outcomes[-1].result["kwargs"] == {"i": 4}


@pytest.mark.parametrize(("name", "kwargs", "timeout_s", "error"), [
    ("no colon", {}, 1.0, ValueError),
    (target("echo"), {"x": object()}, 1.0, TypeError),
    (target("echo"), {}, 0.0, ValueError),
])
def test_a_callers_mistake_raises_before_any_child_starts(name: str, kwargs: dict, timeout_s: float,
                                                          error: type[Exception]) -> None:
    with pytest.raises(error):
        run_isolated(name, kwargs, timeout_s)
    with pytest.raises(error):
        run_many([(target("spin"), {"pid_file": "/nonexistent/pid"}), (name, kwargs)], timeout_s)
