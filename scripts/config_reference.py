"""Write docs/configuration.md, the reference of every config key, from the typed schemas.

    python scripts/config_reference.py           # (re)write docs/configuration.md
    python scripts/config_reference.py --check   # exit 1 when docs/configuration.md is out of date

Everything comes from the code, so the page cannot drift from it (tests/test_config_reference.py):

- the schemas are dataclasses imported by name from sac_runner.config (RUN_SCHEMA, its groups, which
  are its dataclass fields, and COMMAND_SCHEMAS);
- a key's default is its field's default (or default_factory()) from dataclasses.fields;
- its meaning is the comment block right above the field and a comment after it on the same line
  (read with inspect.getsource and tokenize). A field without a comment of its own shares the block
  of the commented field right above it (or above the fields between that share it) when that block
  names it (`reset_networks`, `*_epochs`) or when both are one family of names (actor_lr, critic_lr);
  otherwise its meaning stays empty;
- its checks are the _require(condition, "group.key", "problem", "fix") calls that __post_init__
  makes, directly or through the methods and module functions it calls, read with ast. Loops over
  tuples, f-string keys, local names and names imported from other modules are resolved by
  evaluating the AST node in the namespace of the schema's module; the problem's literal text is
  kept, with what the user gave (", got ...") left out. A check on another group's key (RunConfig's
  cross-group checks) is listed under that key. A check that cannot be read is left out, never an
  error;
- a group's options are the files conf/<group>/*.yaml, with the keys each one sets.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import io
import itertools
import re
import sys
import textwrap
import tokenize
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "configuration.md"
CONF = REPO / "conf"
REGENERATE = "python scripts/config_reference.py"

# (section title, schema class name, key prefix, command family). The groups of sac-train are found
# from RunConfig's fields; sac-eval's and sac-export's keys are bare (`sac-eval episodes=5`).
RUN_SCHEMA = "RunConfig"
COMMAND_SCHEMAS = (("sac-eval", "EvalConfig"), ("sac-export", "ExportConfig"))
REQUIRE = "_require"


# ---- comments: a field's meaning --------------------------------------------------------------------

def _comment_lines(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """Line number -> text of the comments that fill a line, and of the comments after code."""
    full, trailing = {}, {}
    lines = source.splitlines()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return full, trailing
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        row, col = token.start
        text = token.string.lstrip("#").strip()
        if lines[row - 1][:col].strip():
            trailing[row] = text
        else:
            full[row] = text
    return full, trailing


def _names_field(comment: str, name: str) -> bool:
    """Whether a comment block names a field: the word itself, or a glob such as *_every_epochs."""
    if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", comment):
        return True
    return any(fnmatch(name, glob) for glob in re.findall(r"[\w]*\*[\w*]*", comment) if glob.strip("*_"))


def _same_family(owner: str, name: str) -> bool:
    """actor_lr and critic_lr, critic_norm and actor_norm: the same name after the first word."""
    head, sep, rest = owner.partition("_")
    other_head, other_sep, other_rest = name.partition("_")
    return bool(sep and other_sep and rest == other_rest and head != other_head)


def field_comments(cls: type) -> dict[str, tuple[str, Optional[str]]]:
    """Each field of a dataclass -> its meaning from the comments around it ('' when it has none), and
    the field whose comment block it shares (None for its own)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return {}
    classdef = next((node for node in tree.body if isinstance(node, ast.ClassDef)), None)
    if classdef is None:
        return {}
    full, trailing = _comment_lines(source)
    lines = source.splitlines()
    meanings: dict[str, tuple[str, Optional[str]]] = {}
    owner: Optional[tuple[str, str]] = None   # the nearest field above with a comment block of its own
    previous_end = None
    for node in classdef.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            owner, previous_end = None, None
            continue
        name = node.target.id
        above = []
        row = node.lineno - 1
        while row >= 1 and row in full:
            above.insert(0, full[row])
            row -= 1
        after = [trailing[r] for r in range(node.lineno, (node.end_lineno or node.lineno) + 1) if r in trailing]
        own = " ".join(above + after)
        # A field directly below the previous one (no blank line, no other statement between) may share
        # the comment block of the commented field above it.
        adjacent = previous_end is not None and all(
            lines[r - 1].strip() and (r in full or r >= node.lineno) for r in range(previous_end + 1, node.lineno))
        if above:
            owner = (name, " ".join(above))
        elif not adjacent:
            owner = None
        if own:
            meanings[name] = (own, None)
        elif owner is not None and (_names_field(owner[1], name) or _same_family(owner[0], name)):
            meanings[name] = (owner[1], owner[0])
        else:
            meanings[name] = ("", None)
            owner = None                       # a field that shares nothing ends the run of sharers
        previous_end = node.end_lineno or node.lineno
    return meanings


# ---- checks: what __post_init__ refuses -----------------------------------------------------------

_RUNTIME = object()        # a value known only when the check runs (the user's value, self.*)
_CUT = "\x00"              # stands for such a value inside a problem text


class _Choices(list):
    """The values a local name may have (the branches of `a if c else b`)."""


class CheckReader:
    """Reads the _require(...) calls a schema's __post_init__ makes, with their keys resolved in the
    namespace of the module that defines the schema."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        self.skipped: list[str] = []

    def _use_module(self, module: Any) -> None:
        self.namespace = dict(vars(module)) if module is not None else {}
        self.functions = {}
        try:
            tree = ast.parse(inspect.getsource(module))
            self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        except (OSError, TypeError, SyntaxError):
            pass

    def checks(self, cls: type) -> list[tuple[str, str]]:
        """(key, problem) for every check of one schema class, in the order they run."""
        self._use_module(sys.modules.get(cls.__module__))
        methods = self._methods(cls)
        found: list[tuple[str, str]] = []
        if "__post_init__" in methods:
            self._walk(methods["__post_init__"].body, {}, methods, found, depth=0)
        return found

    def _methods(self, cls: type) -> dict[str, ast.FunctionDef]:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            return {}
        classdef = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
        if classdef is None:
            return {}
        return {n.name: n for n in classdef.body if isinstance(n, ast.FunctionDef)}

    # -- statements

    def _walk(self, body: list[ast.stmt], env: dict, methods: dict, found: list, depth: int) -> None:
        for statement in body:
            try:
                self._statement(statement, env, methods, found, depth)
            except Exception as error:  # noqa: BLE001  (a check that cannot be read is skipped)
                self.skipped.append(f"line {getattr(statement, 'lineno', '?')}: {type(error).__name__}: {error}")

    def _statement(self, statement: ast.stmt, env: dict, methods: dict, found: list, depth: int) -> None:
        if isinstance(statement, ast.For) and isinstance(statement.target, ast.Name):
            iterables = self._values(statement.iter, env)
            if not iterables:
                self.skipped.append(f"line {statement.lineno}: a loop over {ast.unparse(statement.iter)}")
                return
            for iterable in iterables:
                for item in iterable:
                    self._walk(statement.body, {**env, statement.target.id: item}, methods, found, depth)
            self._walk(statement.orelse, env, methods, found, depth)
        elif isinstance(statement, ast.If):
            self._walk(statement.body, dict(env), methods, found, depth)
            self._walk(statement.orelse, dict(env), methods, found, depth)
        elif isinstance(statement, (ast.With, ast.While)):
            self._walk(statement.body, env, methods, found, depth)
        elif isinstance(statement, ast.Try):
            for part in (statement.body, *(h.body for h in statement.handlers), statement.orelse, statement.finalbody):
                self._walk(part, env, methods, found, depth)
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            values = self._values(statement.value, env)
            env[statement.targets[0].id] = (_RUNTIME if not values else values[0] if len(values) == 1
                                            else _Choices(values))
        else:
            for node in ast.walk(statement):
                if isinstance(node, ast.Call):
                    self._call(node, env, methods, found, depth)

    def _call(self, call: ast.Call, env: dict, methods: dict, found: list, depth: int) -> None:
        func = call.func
        if isinstance(func, ast.Name) and func.id == REQUIRE:
            self._require(call, env, found)
        elif depth < 6 and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == "self" and func.attr in methods:
            method = methods[func.attr]
            self._walk(method.body, self._bind(method, call, env, skip_self=True), methods, found, depth + 1)
        elif depth < 6 and isinstance(func, ast.Name) and func.id in self.functions:
            function = self.functions[func.id]
            self._walk(function.body, self._bind(function, call, env, skip_self=False), methods, found, depth + 1)

    def _bind(self, function: ast.FunctionDef, call: ast.Call, env: dict, skip_self: bool) -> dict:
        """The called function's parameters: the call's arguments where they can be evaluated, else
        the parameters' defaults, else values known only at run time."""
        params = function.args.posonlyargs + function.args.args
        if skip_self:
            params = params[1:]
        names = [p.arg for p in params]
        defaults = dict(zip(names[len(names) - len(function.args.defaults):], function.args.defaults))
        bound: dict[str, Any] = {p.arg: _RUNTIME for p in params + function.args.kwonlyargs}
        for name, node in list(defaults.items()) + [
                (a.arg, d) for a, d in zip(function.args.kwonlyargs, function.args.kw_defaults) if d is not None]:
            values = self._values(node, {})
            bound[name] = values[0] if len(values) == 1 else _RUNTIME
        given = list(zip([p.arg for p in params], call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg]
        for name, node in given:
            values = self._values(node, env)
            bound[name] = _RUNTIME if not values else values[0] if len(values) == 1 else _Choices(values)
        return bound

    # -- one check

    def _require(self, call: ast.Call, env: dict, found: list) -> None:
        args = list(call.args) + [k.value for k in call.keywords]
        keywords = {k.arg: k.value for k in call.keywords}
        key_node = call.args[1] if len(call.args) > 1 else keywords.get("key")
        problem_node = call.args[2] if len(call.args) > 2 else keywords.get("problem")
        if key_node is None or problem_node is None or len(args) < 3:
            self.skipped.append(f"line {call.lineno}: {REQUIRE} without a key and a problem")
            return
        keys = [k for k in self._values(key_node, env) if isinstance(k, str)]
        if not keys:
            self.skipped.append(f"line {call.lineno}: key {ast.unparse(key_node)}")
            return
        problem = self._text(problem_node, env)
        if not problem:
            self.skipped.append(f"line {call.lineno}: problem {ast.unparse(problem_node)}")
            return
        for key in keys:
            found.append((key, problem))

    def _text(self, node: ast.expr, env: dict) -> str:
        """The literal part of a problem text: evaluable pieces filled in, the user's value left out."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            pieces = []
            for part in node.values:
                if isinstance(part, ast.Constant):
                    pieces.append(str(part.value))
                    continue
                values = [v for v in self._values(part, env) if isinstance(v, str)]
                pieces.append(max(values, key=len) if values else _CUT)
            text = "".join(pieces)
        else:
            values = [v for v in self._values(node, env) if isinstance(v, str)]
            text = max(values, key=len) if values else ""
        text = re.split(r", got\b", text)[0]               # ", got {value}": what the user gave
        text = re.sub(rf"^\({_CUT}\)\s*|\s*\({_CUT}\)", "", text)  # "({value}) is too small", "... ({value})"
        return text.replace(_CUT, "…").strip().rstrip(",;:")

    # -- values

    def _values(self, node: ast.expr, env: dict) -> list:
        """The values an expression may take (several for a name bound to `a if c else b`); [] when it
        needs what only the running check knows (self, the user's value)."""
        if isinstance(node, ast.FormattedValue):                  # one {...} of an f-string
            node = ast.copy_location(ast.JoinedStr(values=[node]), node)
        if isinstance(node, ast.IfExp):
            return self._values(node.body, env) + self._values(node.orelse, env)
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if "self" in names or any(env.get(name) is _RUNTIME for name in names):
            return []
        choices = [(name, env[name]) for name in sorted(names) if isinstance(env.get(name), _Choices)]
        plain = {k: v for k, v in env.items() if v is not _RUNTIME and not isinstance(v, _Choices)}
        code = compile(ast.fix_missing_locations(ast.Expression(body=node)), "<config check>", "eval")
        results = []
        for combination in itertools.product(*(values for _, values in choices)):
            namespace = {**self.namespace, **plain, **dict(zip((n for n, _ in choices), combination))}
            try:
                value = eval(code, namespace)  # noqa: S307  (the schema module's own expressions)
            except Exception:  # noqa: BLE001
                return []
            if value not in results:
                results.append(value)
        return results


# ---- the page ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Row:
    key: str
    default: Any
    meaning: str
    checks: list[str]


@dataclasses.dataclass
class Section:
    title: str
    anchor: str
    schema: type
    prefix: str
    intro: list[str]
    rows: list[Row]
    options: list[tuple[str, str, list[str]]]    # (option, its file, what it sets)
    default_option: Optional[str] = None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def format_value(value: Any) -> str:
    """A value as it is written on the command line."""
    if value is dataclasses.MISSING or value == "???":
        return "required"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:                   # 3e-4, not 0.0003
            mantissa, exponent = f"{value:.12e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped everywhere, <, > and * outside code spans."""
    parts = text.split("`")
    if len(parts) % 2 == 0:                                   # an unmatched backtick: no code spans
        parts = [text.replace("`", "'")]
    out = []
    for i, part in enumerate(parts):
        part = part.replace("|", r"\|")
        if i % 2 == 0:
            part = part.replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")
        out.append(part)
    return "`".join(out)


def _check_text(problem: str) -> str:
    """'must be positive' stays; 'is empty' reads 'refused if it is empty'."""
    if re.match(r"(must|needs|should|cannot)\b", problem):
        return problem
    return f"refused if it {problem}"


def _rows(cls: type, instance: Any, prefix: str, checks: dict[str, list[str]], expand: bool,
          missing: list[str]) -> list[Row]:
    meanings = field_comments(cls)
    rows = []
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name) if instance is not None else _default(f)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if expand:
                rows += _rows(type(value), value, f"{prefix}{f.name}.", checks, expand, missing)
            continue
        key = f"{prefix}{f.name}"
        meaning, shared_from = meanings.get(f.name, ("", None))
        if not meaning:
            missing.append(f"{cls.__name__}.{f.name}")
        elif shared_from is not None:                          # one comment above several fields
            meaning = f"See `{prefix}{shared_from}`."
        rows.append(Row(key, value, meaning, checks.pop(key, [])))
    return rows


def _yaml_options(group: str) -> list[tuple[str, str, list[str]]]:
    """The options of a config group (conf/<group>/*.yaml) and the keys each one sets."""
    options = []
    for path in sorted((CONF / group).glob("*.yaml")):
        text = path.read_text()
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            data = {}
        is_global = bool(re.search(r"^#\s*@package\s+_global_", text, re.M))
        sets = []
        for entry in data.pop("defaults", None) or []:
            if isinstance(entry, str) and entry != "_self_":
                sets.append(f"everything `{group}={entry}` sets")
            elif isinstance(entry, dict):
                for target, option in entry.items():
                    target = str(target).replace("override ", "").strip().lstrip("/")
                    sets.append(f"`{target}={option}`")

        def flatten(node: Any, prefix: str) -> Iterable[str]:
            if isinstance(node, dict) and node:
                for k, v in node.items():
                    yield from flatten(v, f"{prefix}{k}.")
            else:
                yield f"`{prefix[:-1]}={format_value(node)}`"

        sets += list(flatten(data, "" if is_global else f"{group}.")) if data else []
        options.append((path.stem, path.relative_to(CONF.parent).as_posix(), sets))
    return options


def _default_options() -> dict[str, str]:
    """group -> the option conf/config.yaml picks when none is given."""
    try:
        data = yaml.safe_load((CONF / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    found = {}
    for entry in data.get("defaults", []):
        if isinstance(entry, dict):
            for group, option in entry.items():
                if isinstance(group, str) and not group.startswith("override") and option is not None:
                    found[group] = str(option)
    return found


def build(module: Any = None) -> tuple[list[Section], list[str], list[str]]:
    """The page's sections, the fields without a comment, and the checks that could not be placed."""
    module = module or importlib.import_module("sac_runner.config")
    reader = CheckReader()
    missing: list[str] = []
    unplaced: list[str] = []
    sections: list[Section] = []

    def family_checks(classes: list[type]) -> dict[str, list[str]]:
        checks: dict[str, list[str]] = {}
        for cls in classes:
            for key, problem in reader.checks(cls):
                text = _check_text(problem)
                if text not in checks.setdefault(key, []):
                    checks[key].append(text)
        return checks

    def nested(cls: type) -> list[type]:
        found = []
        for f in dataclasses.fields(cls):
            value = _default(f)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                found += [type(value)] + nested(type(value))
        return found

    # sac-train: the run-level keys, then one section per group (RunConfig's dataclass fields)
    run_schema = getattr(module, RUN_SCHEMA)
    groups = [(f.name, type(_default(f))) for f in dataclasses.fields(run_schema)
              if dataclasses.is_dataclass(_default(f)) and not isinstance(_default(f), type)]
    checks = family_checks([cls for _, cls in groups] + [run_schema])   # a group's own checks first
    defaults = _default_options()
    sections.append(Section("Run-level keys", "run-level-keys", run_schema, "",
                            ["Keys of the run itself, outside any group: `sac-train seed=1 device=cpu`."],
                            _rows(run_schema, None, "", checks, False, missing), []))
    for group, cls in groups:
        rows = _rows(cls, None, f"{group}.", checks, True, missing)
        options = _yaml_options(group)
        intro = f"Set a key with `sac-train {group}.<key>=<value>`" + (
            f"; pick an option (a file in `conf/{group}/`) with `sac-train {group}=<option>`." if options else ".")
        sections.append(Section(f"`{group}`", group, cls, f"{group}.", [intro], rows, options, defaults.get(group)))
    unplaced += [f"sac-train: {key}" for key in checks]

    for command, name in COMMAND_SCHEMAS:
        cls = getattr(module, name)
        checks = family_checks([cls] + nested(cls))
        doc = inspect.getdoc(cls) or ""
        intro = [doc.strip()] if doc and not doc.startswith(f"{name}(") else []
        intro.append(f"Keys are given bare: `{command} {dataclasses.fields(cls)[0].name}=<value> ...`.")
        sections.append(Section(command, command, cls, "", intro, _rows(cls, None, "", checks, True, missing), []))
        unplaced += [f"{command}: {key}" for key in checks]
    return sections, missing, unplaced + reader.skipped


def render(module: Any = None) -> str:
    """The whole page, from the schemas of `module` (sac_runner.config by default)."""
    return page(build(module)[0])


def page(sections: list[Section]) -> str:
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated by scripts/config_reference.py from sac_runner/config.py and conf/. Do not edit by hand:",
        f"     change the schemas' comments or checks, then run {REGENERATE}. -->",
        "",
        "Every key of every config group, with its default, its meaning and the check it must pass. A run",
        "is one option from each group plus the run-level keys; any key can be set on the command line:",
        "",
        "```bash",
        "sac-train group=option group.key=value key=value",
        "sac-train env=hopper agent=crossq_small agent.gamma=0.98 schedule.total_steps=200_000 seed=1",
        "sac-train --cfg job env=hopper      # print the composed config (every key and its value) without training",
        "```",
        "",
        "The defaults below are the schemas' (`sac_runner/config.py`). A group option",
        "(`conf/<group>/<option>.yaml`) changes only the keys listed with it, and an `env` option may pick",
        "its `schedule`: `sac-train --cfg job <your overrides>` shows the values a run will use. An unknown",
        "key, a value of the wrong type or a value that fails its check stops the command before anything",
        "is built, with one line naming the key and a fix (exit code 2).",
        "",
        "| section | set with |",
        "| --- | --- |",
    ]
    for s in sections:
        example = (f"`sac-train {s.prefix}<key>=<value>`" if s.prefix else
                   "`sac-train <key>=<value>`" if s.schema.__name__ == RUN_SCHEMA else f"`{s.title} <key>=<value>`")
        out.append(f"| [{s.title}](#{s.anchor}) | {example} |")
    for s in sections:
        out += ["", f"## {s.title}", "", f"Schema: `{s.schema.__name__}`. " + " ".join(s.intro)]
        if s.options:
            out += ["", "| option | sets |", "| --- | --- |"]
            for option, path, sets in s.options:
                label = f"`{option}`" + (" (default)" if option == s.default_option else "")
                sets_text = ", ".join(sets) if sets else "nothing: the schema's defaults"
                out.append(f"| [{label}](../{path}) | {_cell(sets_text)} |")
        out += ["", "| key | default | meaning | check |", "| --- | --- | --- | --- |"]
        for row in s.rows:
            default = format_value(row.default)
            default = default if default == "required" else f"`{_cell(default)}`"
            out.append(f"| `{row.key}` | {default} | {_cell(row.meaning)} | "
                       f"{_cell('; '.join(row.checks))} |")
    return "\n".join(out) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    args = parser.parse_args(argv)
    sections, missing, skipped = build()
    text = page(sections)
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(REPO)} is out of date with sac_runner/config.py; regenerate it: {REGENERATE}",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    missing = list(dict.fromkeys(missing))
    if missing:
        print(f"note: {len(missing)} keys have no comment in the schema (their meaning is empty): "
              f"{', '.join(missing)}", file=sys.stderr)
    if skipped:
        print(f"note: checks left out (unreadable): {'; '.join(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
