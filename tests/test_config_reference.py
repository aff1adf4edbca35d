"""The documentation stays true to the code: docs/configuration.md is what scripts/config_reference.py
writes from the schemas today, it names every schema field, and every relative link in README.md,
CHANGELOG.md and docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest

import sac_runner.config as config

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = ("RunConfig", "EnvConfig", "AgentConfig", "BufferConfig", "ScheduleConfig", "LoggingConfig",
           "CheckpointConfig", "HealthConfig", "EvalConfig", "ExportConfig")


def _generator():
    spec = importlib.util.spec_from_file_location("config_reference", REPO / "scripts" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                      # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _section(text: str, schema: str) -> str:
    """The part of the page that documents one schema class (its '## ' section)."""
    for part in text.split("\n## ")[1:]:
        if f"Schema: `{schema}`." in part:
            return part
    raise AssertionError(f"docs/configuration.md has no section for {schema}")


def _is_group(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def test_configuration_reference_is_up_to_date():
    generator = _generator()
    written = (REPO / "docs" / "configuration.md").read_text()
    assert written == generator.render(), ("docs/configuration.md is out of date with sac_runner/config.py; "
                                           "regenerate it: python scripts/config_reference.py")
    assert generator.main(["--check"]) == 0


def test_configuration_reference_names_every_schema_field():
    text = (REPO / "docs" / "configuration.md").read_text()
    run_groups = {f.name: type(_default(f)) for f in dataclasses.fields(config.RunConfig) if _is_group(_default(f))}
    prefixes = {cls.__name__: f"{name}." for name, cls in run_groups.items()}
    for schema in SCHEMAS:
        cls = getattr(config, schema)
        section = _section(text, schema)
        for f in dataclasses.fields(cls):
            value = _default(f)
            if schema == "RunConfig" and _is_group(value):       # a group: a section of its own
                assert f"## `{f.name}`" in text, f"no section for the {f.name} group"
                continue
            keys = ([f"{f.name}.{g.name}" for g in dataclasses.fields(value)] if _is_group(value)
                    else [prefixes.get(schema, "") + f.name])
            for key in keys:
                assert re.search(rf"^\| `{re.escape(key)}` \|", section, re.M), f"{schema}.{f.name}: no row for {key}"


def test_check_mode_names_the_command_that_regenerates(tmp_path, monkeypatch, capsys):
    generator = _generator()
    stale = tmp_path / "configuration.md"
    stale.write_text("# an old page\n")
    monkeypatch.setattr(generator, "OUTPUT", stale)
    monkeypatch.setattr(generator, "REPO", tmp_path)
    assert generator.main(["--check"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["configuration.md is out of date with sac_runner/config.py; regenerate it: "
                     "python scripts/config_reference.py"]


def test_generator_reads_names_from_other_modules_and_survives_odd_fields(tmp_path, monkeypatch):
    """Choice lists imported from another module, a field without a comment and a check whose key
    cannot be read: every field still gets a row, the readable checks are rendered, nothing raises."""
    package = tmp_path / "fake_schemas"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "blocks.py").write_text('NORMS = ("none", "layer")\nNETWORKS = ("actor", "critic")\n')
    (package / "config.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass, field
        from fake_schemas import blocks
        from fake_schemas.blocks import NORMS

        def _require(ok, key, problem, fix):
            pass

        @dataclass
        class AgentConfig:
            # Hidden-layer normalization.
            critic_norm: str = "none"
            actor_norm: str = "none"
            width: int = 64
            depth: int = 2  # hidden layers

            def __post_init__(self):
                for name in blocks.NETWORKS:
                    _require(getattr(self, f"{name}_norm") in NORMS, f"agent.{name}_norm",
                             f"must be one of {', '.join(NORMS)}, got {getattr(self, name + '_norm')}", "fix")
                if self.depth < 0:  # never true here; the reader reads both branches
                    _require(self.width > 0, self.width_key, "must be positive", "fix")
                    _require(self.depth > 0, "agent.depth", problem_text_from_nowhere, "fix")

        @dataclass
        class RunConfig:
            agent: AgentConfig = field(default_factory=AgentConfig)
            seed: int = 0

        @dataclass
        class EvalConfig:
            checkpoint: str = "???"

        @dataclass
        class ExportConfig:
            checkpoint: str = "???"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import fake_schemas.config as fake

    generator = _generator()
    sections, missing, skipped = generator.build(fake)
    rows = {row.key: row for section in sections for row in section.rows}
    assert rows["agent.critic_norm"].checks == ["must be one of none, layer"]
    assert rows["agent.actor_norm"].meaning == "See `agent.critic_norm`."
    assert rows["agent.depth"].meaning == "hidden layers"
    assert rows["agent.width"].meaning == "" and "AgentConfig.width" in missing
    assert rows["agent.width"].checks == [] and len(skipped) >= 2
    assert "| `agent.width` | `64` |" in generator.render(fake)
    sys.modules.pop("fake_schemas.config", None)
    sys.modules.pop("fake_schemas.blocks", None)
    sys.modules.pop("fake_schemas", None)


# ---- relative links -----------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)


def _pages() -> list[Path]:
    pages = [REPO / "README.md", REPO / "CHANGELOG.md"] + sorted((REPO / "docs").rglob("*.md"))
    return [p for p in pages if p.exists()]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page, and explicit id= anchors."""
    text = FENCE.sub("", page.read_text())
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)          # a link: its text
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    anchors.update(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    return anchors


def _broken_links(pages: list[Path]) -> list[str]:
    broken = []
    for page in pages:
        text = FENCE.sub("", page.read_text())
        text = re.sub(r"`[^`\n]*`", "", text)                                   # code spans
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):                   # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)}: ({target})"
            if not resolved.exists():
                broken.append(f"{where}: no file {path}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{where}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    return broken


def test_relative_links_lead_somewhere():
    pages = _pages()
    assert REPO / "README.md" in pages and len(pages) > 2
    assert _broken_links(pages) == []


def test_link_check_finds_a_broken_link(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "a.md").write_text("# A page\n\n## Its `part`: one\n\n[ok](#its-part-one) [ok](b.md)\n"
                                   "[missing](c.md) [no heading](a.md#nowhere)\n\n```\n[in code](d.md)\n```\n")
    (tmp_path / "b.md").write_text("b\n")
    assert _broken_links([tmp_path / "a.md"]) == ["a.md: (c.md): no file c.md",
                                                  "a.md: (a.md#nowhere): no heading #nowhere in a.md"]
