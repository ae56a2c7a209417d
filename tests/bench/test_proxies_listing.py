"""`bench proxies` shows every proxy's whole description, which stands alone as a sentence."""

import pytest
from click.testing import CliRunner

from bench import cli
from proxies.base import PROXIES, all_proxy_names, get_proxy


def project_proxies() -> list[str]:
    """The proxies the project registers (test modules may register toy proxies of their own)."""
    return [name for name in all_proxy_names() if PROXIES[name].cls.__module__.startswith("proxies.")]


def normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", project_proxies())
def test_description_is_a_whole_sentence_citing_nothing_outside_the_repository(name):
    proxy = get_proxy(name)
    description = proxy.description()
    assert description[:1].isupper() and description.endswith("."), description
    for text in (description, proxy.reference):
        assert text and "REFERENCE" not in text


@pytest.mark.parametrize("width", [40, 80, 200])
def test_bench_proxies_prints_every_whole_description_and_reference(monkeypatch, width):
    monkeypatch.setattr(cli.console, "width", width)
    result = CliRunner().invoke(cli.main, ["proxies"])
    assert result.exit_code == 0, result.output
    output = normalised(result.output)
    for name in all_proxy_names():
        proxy = get_proxy(name)
        assert normalised(proxy.description()) in output, name
        assert normalised(proxy.reference) in output, name
    assert max(len(line) for line in result.output.splitlines()) <= width
