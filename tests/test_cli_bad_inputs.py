"""Every command with bad input: a clear message, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import shutil

from mbc_interp.cli import main


def _tree(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own errors
        return int(e.code)


def test_bad_inputs_across_the_cli(tmp_path, tiny_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    stray_run = tmp_path / "stray"
    shutil.copytree(tiny_run.path, stray_run)
    (stray_run / "analysis" / "steps").mkdir(parents=True)
    (stray_run / "analysis" / "steps" / "README.txt").write_text("mine")
    plain = tmp_path / "plain"  # an existing directory that is not a run or a sweep
    plain.mkdir()
    (plain / "notes.txt").write_text("x")
    missing = str(tmp_path / "missing")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[train]\nlr = 'fast'\n")
    r, p = str(run), str(plain)
    cases = [
        ["train", "--lr", "abc"], ["train", "--steps", "1.5"], ["train", "--betas", "0.9"],
        ["train", "--keep-optimizer", "some"], ["train", "--config", missing],
        ["train", "--config", str(bad_toml), "--out", str(tmp_path / "new")],
        ["train", "--resume", missing], ["train", "--resume", p], ["train", "--resume", r,
                                                                   "--lr", "1e-3"],
        ["train", "--no-such-flag"],
        ["info", missing], ["info", p], ["verify", missing], ["verify", p],
        ["verify", missing, "--drop-damaged"],
        ["analyze", missing], ["analyze", p], ["analyze", r, "--every", "0"],
        ["analyze", r, "--n-pairs", "x"], ["analyze", r, "--patch-kinds", "nope"],
        ["analyze", r, "--n-pairs", "0"], ["analyze", str(stray_run), "--no-progress"],
        ["report", missing], ["report", p], ["report", r, "--x", "time"],
        ["report", str(stray_run), "--no-progress"],
        ["sweep", "--out", str(tmp_path / "sw")], ["sweep", "--out", str(tmp_path / "sw"),
                                                    "--D", "x"],
        ["sweep", "--config", missing, "--out", str(tmp_path / "sw")],
        ["sweep", "--status", "--out", p], ["sweep", "--out", str(tmp_path / "sw"), "--D", "8",
                                             "--backend", "slurm"],
        ["fit", missing], ["fit", p], ["fit", r, "--noise-level", "many"],
        ["forecast", r, "--as-of", "-5"], ["forecast", r, "--as-of", "nan"],
        ["forecast", r, "--as-of", "soon"],
    ]  # fmt: skip
    before = _tree(tmp_path)
    for argv in cases:
        code = _exit_code(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, code, err)
        assert "error" in err and "Traceback" not in err, (argv, err)
        assert _tree(tmp_path) == before, argv  # nothing written
        if "--as-of" in argv:
            assert f"argument --as-of: {argv[-1]}" in err or f"'{argv[-1]}'" in err, err


def test_bad_metrics_lines_fail_analyze_before_any_checkpoint(tmp_path, tiny_run, capsys):
    """The line number, file and field are named, and nothing is analysed (nothing written)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    metrics = run / "metrics.jsonl"
    good = metrics.read_text().splitlines()
    broken = {
        3: ("not json at all", "line 3: not valid JSON"),
        5: ('{"step": 40, "tokens": 100}', "line 5: missing field 'loss'"),
        2: ('{"step": "ten", "tokens": 1, "loss": 1.0}', "line 2: field 'step' = 'ten'"),
        4: ("[1, 2]", "line 4: a JSON object expected"),
    }
    for line, (text, message) in broken.items():
        lines = list(good)
        lines[line - 1] = text
        metrics.write_text("\n".join(lines) + "\n")
        before = _tree(tmp_path)
        assert _exit_code(["analyze", str(run), "--force", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"{metrics}: {message}" in err and "Traceback" not in err, err
        assert _tree(tmp_path) == before and not (run / "analysis").exists()
