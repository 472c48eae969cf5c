"""The helpers a test reaches for: skips and why, attempts, a map's element results."""

from __future__ import annotations

import pytest

from pgflow import Flow
from pgflow.testing import (
    FlowRunner,
    TaskState,
    assert_skipped,
    attempts,
    map_errors,
    map_outputs,
    step_tasks,
)

crawl = Flow("crawl", max_attempts=2, base_delay=60)


@crawl.array()
def pages(input: dict[str, list[str]]) -> list[str]:
    return input["pages"]


@crawl.map(array=pages)
def size(page: str) -> int:
    if page.startswith("bad"):
        raise LookupError(f"{page} is gone")
    return len(page)


@crawl.step(depends_on=[pages], if_={"pages": ["index"]})
def index(pages: list[str]) -> str:
    return "indexed"


@crawl.step(depends_on=[pages], if_not={"pages": ["index"]}, when_unmet="skip-cascade")
def sitemap(pages: list[str]) -> str:
    return "mapped"


@crawl.step(depends_on=[sitemap])
def publish(sitemap: str) -> str:
    return "published"


def test_map_elements_attempts_and_skips(flow_runner: FlowRunner) -> None:
    run = flow_runner.run(crawl, {"pages": ["index", "bad-a", "about"]}, raise_on_failure=False)
    assert run.status == "failed"
    tasks = flow_runner.tasks(run)
    assert all(isinstance(t, TaskState) for t in tasks)
    assert [t.task_index for t in flow_runner.tasks(run, "size")] == [0, 1, 2]
    assert flow_runner.map_outputs(run, "size") == map_outputs(tasks, "size") == [5, None, 5]
    assert flow_runner.map_errors(run, "size") == {1: "bad-a is gone"}
    failed = step_tasks(tasks, "size")[1]
    assert (failed.status, failed.input, failed.error_type) == ("failed", "bad-a", "LookupError")
    assert failed.error_traceback and "is gone" in failed.error_traceback
    assert flow_runner.attempts(run, "size", task_index=1) == 2
    assert flow_runner.attempts(run, "size") == attempts(tasks, "size") == 4
    assert run.step("index").output == "indexed"
    state = assert_skipped(run, "sitemap", reason='forbidden {"pages": ["index"]}')
    assert state.skip_reason is not None and state.skip_reason.startswith("condition unmet")
    assert_skipped(run, "publish")  # skip-cascade


def test_skip_assertions_say_what_happened_instead(flow_runner: FlowRunner) -> None:
    run = flow_runner.run(crawl, {"pages": ["about"]})
    assert run.status == "completed"
    with pytest.raises(AssertionError, match="step 'sitemap' was not skipped: its status is "
                       "'completed'"):  # fmt: skip
        assert_skipped(run, "sitemap")
    with pytest.raises(AssertionError, match=r"its reason .* does not contain 'retries'"):
        flow_runner.assert_skipped(run, "index", reason="retries")
    with pytest.raises(AssertionError, match="has no step 'nope'"):
        assert_skipped(run, "nope")


def test_helpers_on_a_step_without_tasks_say_why(flow_runner: FlowRunner) -> None:
    run = flow_runner.run(crawl, {"pages": ["about"]})
    tasks = flow_runner.tasks(run)
    with pytest.raises(AssertionError, match="step 'index' has no task in this run"):
        attempts(tasks, "index")
    with pytest.raises(AssertionError, match="step 'size' has no task 7"):
        flow_runner.attempts(run, "size", task_index=7)
    assert map_errors(tasks, "size") == {}
    assert flow_runner.map_outputs(run.run_id, "size") == [5]
