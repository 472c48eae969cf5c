"""The curated public API: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pgflow
import pgflow.errors


def test_all_is_sorted_and_every_name_resolves():
    # as ruff's RUF022 sorts it: constants, then classes, then the rest
    assert pgflow.__all__ == sorted(
        pgflow.__all__, key=lambda n: (not n.isupper(), not n[:1].isupper(), n)
    )
    for name in pgflow.__all__:
        assert getattr(pgflow, name) is not None


def test_every_error_class_is_exported():
    errors = {
        name
        for name, value in vars(pgflow.errors).items()
        if inspect.isclass(value) and issubclass(value, pgflow.errors.PgflowError)
    }
    assert errors <= set(pgflow.__all__)


def test_public_classes_present_themselves_as_pgflow():
    for name in ("Flow", "Context", "PgflowError", "ShapeMismatchError", "Client", "Worker"):
        assert getattr(pgflow, name).__module__ == "pgflow"


def test_import_is_cheap_client_and_worker_load_on_first_use():
    code = (
        "import sys, pgflow; "
        "assert 'pgflow.worker' not in sys.modules and 'psycopg_pool' not in sys.modules; "
        "pgflow.Worker; assert 'pgflow.worker' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    try:
        pgflow.Nope  # noqa: B018
    except AttributeError as exc:
        assert "Nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
