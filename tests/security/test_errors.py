"""One exception root: every error class of medfed is a MedfedError, and the tree drawn in
security/errors.py names each of them (as httpx's tests keep its exception tree honest)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import security.errors
from security.errors import MedfedError

PACKAGES = ("gateway", "schema", "connectors", "security")
# Signals between two modules, caught beside where they are raised (the docstring says so).
SIGNALS = {"FieldDenied", "BreakerOpen", "Reasoned", "NoHead", "SourceDown", "OutOfRange"}


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".static" in info.name or info.name.endswith(("writer_child", "__main__")):
                continue
            yield importlib.import_module(info.name)


def _our_exceptions() -> dict[str, type]:
    found = {}
    for module in _modules():
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_error_of_ours_is_a_medfed_error():
    from graphql import GraphQLError

    strays = sorted(
        path
        for path, cls in _our_exceptions().items()
        if not issubclass(cls, MedfedError | GraphQLError)
        and cls.__name__ not in SIGNALS
        and not cls.__name__.startswith("_")  # a private signal inside one module
        and not issubclass(cls, Warning)
        and not any(base.__name__ in SIGNALS for base in cls.__mro__)
    )
    assert strays == []


def test_the_tree_in_the_docstring_names_every_error():
    drawn = set(re.findall(r"\b[A-Z][A-Za-z0-9]+\b", security.errors.__doc__ or ""))
    classes = {
        cls.__name__
        for cls in _our_exceptions().values()
        if issubclass(cls, MedfedError) and cls is not MedfedError
    }
    assert classes - drawn == set(), "add them to the tree in security/errors.py"


def test_the_command_line_prints_any_medfed_error_as_one_line(monkeypatch, capsys):
    import argparse

    from gateway import cli
    from security.audit import AuditLogError  # not among the seven cli.py used to list

    def broken(_args):
        raise AuditLogError("the log has no checkpoint 7")

    monkeypatch.setattr(
        argparse.ArgumentParser,
        "parse_args",
        lambda self, argv=None: argparse.Namespace(handler=broken),
    )
    assert cli.main([]) == 2
    assert capsys.readouterr().err == "medfed: the log has no checkpoint 7\n"

    def interrupted(_args):
        raise RuntimeError("a bug")  # control: not ours, so not dressed as a user's mistake

    monkeypatch.setattr(
        argparse.ArgumentParser,
        "parse_args",
        lambda self, argv=None: argparse.Namespace(handler=interrupted),
    )
    with pytest.raises(RuntimeError):
        cli.main([])


@pytest.mark.parametrize("cls", [ValueError, LookupError, PermissionError])
def test_a_former_builtin_base_is_kept(cls):
    kept = [c for c in _our_exceptions().values() if issubclass(c, MedfedError | cls)]
    assert any(issubclass(c, cls) and issubclass(c, MedfedError) for c in kept)
