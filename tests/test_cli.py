"""The CLI shell: exit codes, fast start (no heavy imports), README/CI command identity."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vertebrafat.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnxruntime", "matplotlib", "dask", "monai", "highdicom", "sklearn", "pingouin")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_unknown_command_exits_two() -> None:
    assert main(["no-such-verb"]) == 2


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from vertebrafat.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    assert block is not None, "README must start with a shell block of two commands"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_starts_with_exactly_two_commands() -> None:
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert "vertebrafat demo" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci
