"""Exit codes as README documents them: 2 for a usage error the command line parser finds, 1 for an error to fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.mark.parametrize("args", [
    ["score", "--as-of", "2025-13-01"],
    ["score", "--as-of", "yesterday"],
    ["features", "--as-of", "01/02/2025"],
    ["train", "--backtest", "-1"],
    ["train", "--backtest", "two"],
    ["train", "--no-such-option"],
    ["no-such-command"],
])
def test_a_usage_error_exits_2_with_the_usage(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output and "Traceback" not in result.output


def test_an_error_to_fix_exits_1_with_one_line(tmp_path):
    result = CliRunner().invoke(app, ["--params", str(tmp_path / "missing.yaml"), "validate"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
