"""The README's "Adding a proxy" recipe, followed literally: each example passes the generic proxy
checks its declaration asks for, and ruff, in a copy of proxies/ with the catalog edited as told."""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from proxies.base import PROXIES, get_proxy
from tests.proxies.test_every_proxy import check_seeded_and_side_effect_free

ROOT = Path(__file__).resolve().parents[2]


def recipe_examples() -> list[tuple[str, str]]:
    """(module name, code) of each python block of the README's "Adding a proxy" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding a proxy", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return [(re.match(r"# proxies/(\w+)\.py", block).group(1), block) for block in blocks]


EXAMPLES = recipe_examples()


def test_the_recipe_has_a_weight_free_and_a_gradient_example():
    assert [name for name, _ in EXAMPLES] == ["linear_layers", "grad_l1"]


@pytest.fixture
def registered(tmp_path, request):
    """The example's module loaded from a file, its proxy registered for the test only."""
    module, code = request.param
    before = set(PROXIES)
    path = tmp_path / f"{module}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(f"recipe_{module}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    added = set(PROXIES) - before
    yield sorted(added)
    for name in added:
        del PROXIES[name]


@pytest.mark.parametrize("registered", EXAMPLES, ids=[name for name, _ in EXAMPLES],
                         indirect=True)
def test_each_example_passes_the_checks_its_declaration_asks_for(registered, small_model):
    assert len(registered) == 1
    make, batch = small_model
    check_seeded_and_side_effect_free(get_proxy(registered[0]), make, batch)


def test_the_examples_and_the_edited_catalog_pass_ruff(tmp_path):
    ruff = shutil.which("ruff") or str(Path(__import__("sys").executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    copy = tmp_path / "proxies"
    shutil.copytree(ROOT / "proxies", copy, ignore=shutil.ignore_patterns("__pycache__"))
    catalog = copy / "catalog.py"
    text = catalog.read_text()
    for module, code in EXAMPLES:
        (copy / f"{module}.py").write_text(code)
        text = text.replace('\n)\n', f'\n    "{module}",\n)\n', 1)
    catalog.write_text(text)
    assert all(f'"{module}"' in catalog.read_text() for module, _ in EXAMPLES)
    result = subprocess.run([ruff, "check", "--config", str(ROOT / "pyproject.toml"), str(copy)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
