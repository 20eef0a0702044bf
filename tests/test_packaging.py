"""pyproject.toml and environment.yml declare the same dependencies."""

import re
import tomllib

import yaml

from conftest import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | {req for extra in project["optional-dependencies"].values() for req in extra}
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    from_conda = set(pip_section)
    assert {_name(r): r for r in from_conda} == {_name(r): r for r in declared}
