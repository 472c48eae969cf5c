"""Loading FLOWS: files and dotted modules, ``:attr``, definition order, clear failures."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pgflow.errors import FlowLoadError
from pgflow.loader import load_flows, split_reference

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "flows"

TWO_FLOWS = """
from pgflow import Flow

second = Flow("created_first")
first = Flow("created_second")
alias = second
not_a_flow = 42
"""


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("flows.py", ("flows.py", None)),
        ("flows.py:flow", ("flows.py", "flow")),
        ("app.flows:my_flow", ("app.flows", "my_flow")),
        ("C:\\work\\flows.py", ("C:\\work\\flows.py", None)),
        ("dir/flows.py:", ("dir/flows.py:", None)),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str | None]) -> None:
    assert split_reference(reference) == expected


def test_a_file_yields_every_flow_once_in_creation_order(tmp_path: Path) -> None:
    path = write(tmp_path, "two.py", TWO_FLOWS)
    assert [flow.slug for flow in load_flows(str(path))] == ["created_first", "created_second"]


def test_attr_selects_one_flow_inline_or_as_an_argument(tmp_path: Path) -> None:
    path = write(tmp_path, "pick.py", TWO_FLOWS)
    assert [f.slug for f in load_flows(f"{path}:first")] == ["created_second"]
    assert [f.slug for f in load_flows(str(path), attr="second")] == ["created_first"]


def test_attr_may_hold_a_list_of_flows(tmp_path: Path) -> None:
    path = write(tmp_path, "listed.py", TWO_FLOWS + "\nALL = [first, second, first]\n")
    assert [f.slug for f in load_flows(f"{path}:ALL")] == ["created_second", "created_first"]


def test_a_dotted_module_is_imported_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    write(package, "__init__.py", "")
    write(package, "pipelines.py", TWO_FLOWS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert len(load_flows("myapp.pipelines")) == 2


def test_a_flows_file_can_import_its_neighbours(tmp_path: Path) -> None:
    write(
        tmp_path,
        "shared_models_for_loader.py",
        "from pydantic import BaseModel\nclass In(BaseModel):\n    x: int\n",
    )
    path = write(
        tmp_path,
        "uses_neighbour.py",
        """
        from pgflow import Flow
        from shared_models_for_loader import In
        flow = Flow("neighbour", input=In)
        """,
    )
    assert load_flows(str(path))[0].input_model.__name__ == "In"


def test_the_fixture_module_with_two_flows_and_forward_references_loads() -> None:
    flows = load_flows(str(FIXTURES / "fan_out.py"))
    assert [f.slug for f in flows] == ["fan_out", "double_numbers"]


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FlowLoadError, match="no such file") as caught:
        load_flows(str(tmp_path / "nope.py"))
    assert caught.value.hint


def test_a_missing_module() -> None:
    with pytest.raises(FlowLoadError, match=r"no module named 'no_such_pgflow_module\.flows'"):
        load_flows("no_such_pgflow_module.flows")


def test_a_module_without_flows(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "x = 1\n")
    with pytest.raises(FlowLoadError, match=r"defines no pgflow\.Flow") as caught:
        load_flows(str(path))
    assert "Flow('my_flow')" in (caught.value.hint or "")


def test_a_missing_attribute_lists_the_flows_there(tmp_path: Path) -> None:
    path = write(tmp_path, "attrs.py", TWO_FLOWS)
    with pytest.raises(FlowLoadError, match="has no attribute 'nope'") as caught:
        load_flows(f"{path}:nope")
    assert "alias, first, second" in (caught.value.hint or "")


def test_an_attribute_that_is_not_a_flow(tmp_path: Path) -> None:
    path = write(tmp_path, "notflow.py", TWO_FLOWS)
    with pytest.raises(FlowLoadError, match=r"not_a_flow is not a pgflow\.Flow"):
        load_flows(f"{path}:not_a_flow")


def test_two_flows_with_one_slug(tmp_path: Path) -> None:
    path = write(
        tmp_path, "dupes.py", "from pgflow import Flow\na = Flow('same')\nb = Flow('same')\n"
    )
    with pytest.raises(FlowLoadError, match="two different flows with the slug 'same'"):
        load_flows(str(path))


def test_an_exception_in_user_code_shows_the_users_traceback_only(tmp_path: Path) -> None:
    helper = write(
        tmp_path, "helper_for_loader_test.py", "def boom():\n    raise KeyError('cfg')\n"
    )
    path = write(
        tmp_path,
        "raising.py",
        """
        from helper_for_loader_test import boom
        x = 1
        boom()
        """,
    )
    with pytest.raises(FlowLoadError) as caught:
        load_flows(str(path))
    message = caught.value.message
    assert f'File "{path}", line 4, in <module>' in message
    assert f'File "{helper}", line 2, in boom' in message
    assert message.rstrip().endswith("KeyError: 'cfg'")
    assert "importlib" not in message and "pgflow/loader.py" not in message
    assert "raising" not in sys.modules


def test_a_syntax_error_shows_file_line_and_caret(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.py", "flow = (\n")
    with pytest.raises(FlowLoadError) as caught:
        load_flows(str(path))
    assert f'File "{path}", line 1' in caught.value.message
    assert "SyntaxError" in caught.value.message


def test_a_definition_error_is_located_at_the_users_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad_definition.py",
        """
        from pgflow import Flow
        flow = Flow("ok")
        flow.step("two words", lambda: 1)
        """,
    )
    with pytest.raises(FlowLoadError) as caught:
        load_flows(str(path))
    error = caught.value
    assert error.message.startswith(f"{path}:4: invalid step slug 'two words' in flow 'ok'")
    assert 'flow.step("two words", lambda: 1)' in error.message
    assert error.hint and "letters, digits" in error.hint
    assert "pgflow/dsl" not in error.message
