"""README stays true: every hook is documented with its exact signature; CI runs README's commands."""

import re
from pathlib import Path

import runbridge.hookspecs as hookspecs

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\|", "|")
HOOKS = [name for name, fn in vars(hookspecs).items()
         if callable(fn) and getattr(fn, "runbridge_spec", None) is not None]


def signature(fn) -> str:
    annotations = dict(fn.__annotations__)
    returns = annotations.pop("return")
    return f"def {fn.__name__}(" + ", ".join(f"{k}: {v}" for k, v in annotations.items()) + f") -> {returns}"


def test_every_hookspec_appears_in_readme_with_its_exact_signature():
    assert set(HOOKS) >= set(hookspecs.REQUIRED_HOOKS)
    for name in HOOKS:
        assert signature(getattr(hookspecs, name)) in README, name


def test_ci_runs_the_quickstart_commands_of_the_readme():
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    setup, tests = block
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup.startswith("python3 -m venv .venv && ")  # a fresh venv with the pip it ships
    assert setup in ci_lines and tests in ci_lines
    assert not any("pip install" in line and "--upgrade" in line for line in ci_lines)
