"""Offline checks that hassfest and the HACS action would make on this repository.

Each check is a function that takes a path and returns a list of problems (an
empty list when all is well), so the tests can run it against a copy of the
integration. `main` runs them all, prints one line per check (and one per
problem) and exits non-zero when any check failed.

    scripts/validate              every check; the Home Assistant wheel of the
                                  forward-compatibility check is cached in
                                  .cache/ha-wheel/ and reused
    scripts/validate --refresh    download the newest wheel again
    scripts/validate --strict     fail (not skip) when the wheel cannot be had
    scripts/validate --offline    skip the forward-compatibility check
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
import subprocess
import sys
from typing import Any
import zipfile

from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "custom_components" / "sprecord"
WHEEL_CACHE = ROOT / ".cache" / "ha-wheel"
WHEEL_PYTHON = "3.14.2"

# --- manifest.json -----------------------------------------------------------

MANIFEST_REQUIRED = (
    "domain",
    "name",
    "codeowners",
    "config_flow",
    "documentation",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "loggers",
    "requirements",
    "version",
)
MANIFEST_KNOWN = {
    *MANIFEST_REQUIRED,
    "after_dependencies",
    "bluetooth",
    "dependencies",
    "dhcp",
    "disabled",
    "homekit",
    "import_executor",
    "mqtt",
    "quality_scale",
    "single_config_entry",
    "ssdp",
    "usb",
    "zeroconf",
}
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
    "virtual",
}
# The version strategies hassfest accepts for a custom integration.
VERSION_STRATEGIES = {
    AwesomeVersionStrategy.CALVER,
    AwesomeVersionStrategy.SEMVER,
    AwesomeVersionStrategy.SIMPLEVER,
    AwesomeVersionStrategy.BUILDVER,
    AwesomeVersionStrategy.PEP440,
}

# --- hacs.json ----------------------------------------------------------------

HACS_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "homeassistant": str,
    "render_readme": bool,
    "country": (str, list),
    "zip_release": bool,
    "filename": str,
    "hide_default_branch": bool,
    "content_in_root": bool,
    "persistent_directory": str,
    "hacs": str,
}

# --- translations -------------------------------------------------------------

# Top-level sections of strings.json that hassfest's schema allows.
STRINGS_SECTIONS = {
    "application_credentials",
    "common",
    "conditions",
    "config",
    "config_panel",
    "config_subentries",
    "conversation",
    "device",
    "device_automation",
    "entity",
    "entity_component",
    "exceptions",
    "issues",
    "options",
    "preview_features",
    "selector",
    "services",
    "system_health",
    "title",
    "triggers",
}
LANGUAGES = ("en", "ru")
PLACEHOLDER = re.compile(r"{(\w+)}")

# --- quality_scale.yaml -------------------------------------------------------

QUALITY_SCALE: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow-test-coverage",
        "config-flow",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery-update-info",
        "discovery",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
ALL_RULES = {rule for rules in QUALITY_SCALE.values() for rule in rules}

# --- icons.json ---------------------------------------------------------------

# Entity platforms whose modules may hold entity descriptions.
ENTITY_PLATFORMS = {
    "binary_sensor",
    "button",
    "climate",
    "cover",
    "event",
    "fan",
    "light",
    "lock",
    "number",
    "select",
    "sensor",
    "switch",
    "text",
    "update",
    "valve",
}


# === helpers ==================================================================


def _load_json(path: Path, problems: list[str]) -> Any:
    """Return the JSON in `path`, or None after adding a problem."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path.name}: file is missing")
    except ValueError as err:
        problems.append(f"{path.name}: invalid JSON: {err}")
    return None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Return {dotted.key: leaf} for a nested translation tree."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# === manifest.json ============================================================


def check_manifest(component: Path) -> list[str]:
    """Check manifest.json: keys, their types and values, and their order."""
    problems: list[str] = []
    manifest = _load_json(component / "manifest.json", problems)
    if manifest is None:
        return problems
    if not isinstance(manifest, dict):
        return ["manifest.json: not a JSON object"]

    problems.extend(
        f"manifest.json: required key {key!r} is missing"
        for key in MANIFEST_REQUIRED
        if key not in manifest
    )
    problems.extend(
        f"manifest.json: unknown key {key!r}"
        for key in manifest
        if key not in MANIFEST_KNOWN
    )

    keys = list(manifest)
    wanted = [k for k in ("domain", "name") if k in manifest]
    wanted += sorted(k for k in keys if k not in {"domain", "name"})
    if keys != wanted:
        problems.append(
            "manifest.json: keys are not sorted (domain, name, then alphabetical):"
            f" expected {', '.join(wanted)}"
        )

    domain = manifest.get("domain")
    if "domain" in manifest and domain != component.name:
        problems.append(
            f"manifest.json: domain {domain!r} does not match the folder"
            f" {component.name!r}"
        )
    if "name" in manifest and not (
        isinstance(manifest["name"], str) and manifest["name"].strip()
    ):
        problems.append("manifest.json: 'name' must be a non-empty string")
    codeowners = manifest.get("codeowners", [])
    if not _is_str_list(codeowners) or not all(o.startswith("@") for o in codeowners):
        problems.append("manifest.json: 'codeowners' must be a list of @names")
    if "config_flow" in manifest:
        if not isinstance(manifest["config_flow"], bool):
            problems.append("manifest.json: 'config_flow' must be true or false")
        elif manifest["config_flow"] != (component / "config_flow.py").is_file():
            problems.append(
                "manifest.json: 'config_flow' does not match whether config_flow.py"
                " exists"
            )
    problems.extend(
        f"manifest.json: {key!r} must be a list of strings"
        for key in ("dependencies", "after_dependencies", "loggers", "requirements")
        if key in manifest and not _is_str_list(manifest[key])
    )
    for key in ("documentation", "issue_tracker"):
        url = manifest.get(key)
        if key in manifest and not (
            isinstance(url, str) and url.startswith(("https://", "http://"))
        ):
            problems.append(f"manifest.json: {key!r} must be an http(s) URL")
    if "integration_type" in manifest and (
        manifest["integration_type"] not in INTEGRATION_TYPES
    ):
        problems.append(
            f"manifest.json: integration_type {manifest['integration_type']!r} is"
            f" not one of {', '.join(sorted(INTEGRATION_TYPES))}"
        )
    if "iot_class" in manifest and manifest["iot_class"] not in IOT_CLASSES:
        problems.append(
            f"manifest.json: iot_class {manifest['iot_class']!r} is not one of"
            f" {', '.join(sorted(IOT_CLASSES))}"
        )
    if "version" in manifest:
        version = manifest["version"]
        if not isinstance(version, str) or (
            AwesomeVersion(version).strategy not in VERSION_STRATEGIES
        ):
            problems.append(
                f"manifest.json: version {version!r} is not a valid version"
                " (CalVer, SemVer, SimpleVer, BuildVer or PEP 440)"
            )
    return problems


# === hacs.json ================================================================


def check_hacs(hacs_file: Path) -> list[str]:
    """Check hacs.json: only keys HACS knows, of the right types."""
    problems: list[str] = []
    hacs = _load_json(hacs_file, problems)
    if hacs is None:
        return problems
    if not isinstance(hacs, dict):
        return ["hacs.json: not a JSON object"]
    if not (isinstance(hacs.get("name"), str) and hacs["name"].strip()):
        problems.append("hacs.json: required key 'name' is missing or empty")
    for key, value in hacs.items():
        if key not in HACS_KEYS:
            problems.append(f"hacs.json: key {key!r} is not allowed by HACS")
        elif not isinstance(value, HACS_KEYS[key]):
            problems.append(f"hacs.json: {key!r} has the wrong type")
    for key in ("homeassistant", "hacs"):
        value = hacs.get(key)
        if isinstance(value, str) and (
            AwesomeVersion(value).strategy is AwesomeVersionStrategy.UNKNOWN
        ):
            problems.append(f"hacs.json: {key} {value!r} is not a version")
    if hacs.get("zip_release") and "filename" not in hacs:
        problems.append("hacs.json: 'zip_release' needs 'filename'")
    return problems


# === translations =============================================================


def check_translations(component: Path) -> list[str]:
    """Check strings.json against translations/en.json and translations/ru.json."""
    problems: list[str] = []
    strings = _load_json(component / "strings.json", problems)
    if not isinstance(strings, dict):
        return problems or ["strings.json: not a JSON object"]
    problems.extend(
        f"strings.json: top-level section {section!r} is not allowed by hassfest"
        for section in strings
        if section not in STRINGS_SECTIONS
    )
    reference = flatten(strings)
    for key, text in reference.items():
        if not isinstance(text, str) or not text.strip():
            problems.append(f"strings.json: {key} is empty or not a text")

    for language in LANGUAGES:
        name = f"translations/{language}.json"
        translation = _load_json(component / "translations" / f"{language}.json", [])
        if not isinstance(translation, dict):
            problems.append(f"{name}: missing, invalid or not a JSON object")
            continue
        flat = flatten(translation)
        problems.extend(
            f"{name}: missing key {key}" for key in sorted(reference.keys() - flat)
        )
        problems.extend(
            f"{name}: extra key {key} (not in strings.json)"
            for key in sorted(flat.keys() - reference.keys())
        )
        for key, text in flat.items():
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{name}: {key} is empty or not a text")
                continue
            original = reference.get(key)
            if not isinstance(original, str):
                continue
            want = set(PLACEHOLDER.findall(original))
            have = set(PLACEHOLDER.findall(text))
            if want != have:
                problems.append(
                    f"{name}: {key} has placeholders {sorted(have)},"
                    f" strings.json has {sorted(want)}"
                )
        if language == "en":
            problems.extend(
                f"{name}: {key} differs from strings.json"
                for key in sorted(flat.keys() & reference.keys())
                if flat[key] != reference[key]
            )
    return problems


# === quality_scale.yaml =======================================================


def check_quality_scale(component: Path) -> list[str]:
    """Check quality_scale.yaml: its format, and that it names every rule."""
    path = component / "quality_scale.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ["quality_scale.yaml: file is missing"]
    except yaml.YAMLError as err:
        return [f"quality_scale.yaml: invalid YAML: {err}"]
    if not isinstance(data, dict) or set(data) != {"rules"}:
        return ["quality_scale.yaml: must be a mapping with only the key 'rules'"]
    rules = data["rules"]
    if not isinstance(rules, dict):
        return ["quality_scale.yaml: 'rules' must be a mapping"]

    problems = [
        f"quality_scale.yaml: missing {tier} rule {rule}"
        for tier, tier_rules in QUALITY_SCALE.items()
        for rule in tier_rules
        if rule not in rules
    ]
    problems.extend(
        f"quality_scale.yaml: unknown rule {rule}"
        for rule in rules
        if rule not in ALL_RULES
    )
    for rule, value in rules.items():
        if isinstance(value, str):
            if value == "exempt":
                problems.append(
                    f"quality_scale.yaml: {rule} is exempt without a comment"
                    " (write status: exempt and a comment)"
                )
            elif value not in {"done", "todo"}:
                problems.append(f"quality_scale.yaml: {rule} has status {value!r}")
        elif isinstance(value, dict):
            status = value.get("status")
            comment = value.get("comment")
            if set(value) - {"status", "comment"}:
                problems.append(
                    f"quality_scale.yaml: {rule} has keys other than status, comment"
                )
            if status not in {"done", "todo", "exempt"}:
                problems.append(f"quality_scale.yaml: {rule} has status {status!r}")
            if comment is not None and not isinstance(comment, str):
                problems.append(f"quality_scale.yaml: {rule} comment is not a text")
            if status in {"exempt", "todo"} and not (
                isinstance(comment, str) and comment.strip()
            ):
                problems.append(
                    f"quality_scale.yaml: {rule} is {status} without a comment"
                )
        else:
            problems.append(
                f"quality_scale.yaml: {rule} must be done/todo or a status mapping"
            )
    return problems


# === icons.json ===============================================================


def entity_translation_keys(component: Path) -> dict[str, set[str]]:
    """Return {platform: translation keys} of the entities in platform modules.

    A key is a `translation_key="..."` argument of a call (an entity
    description) or an `_attr_translation_key = "..."` in a platform module.
    """
    found: dict[str, set[str]] = {}
    for platform in sorted(ENTITY_PLATFORMS):
        module = component / f"{platform}.py"
        if not module.is_file():
            continue
        keys = found.setdefault(platform, set())
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "translation_key":
                value = node.value
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = (
                    node.targets if isinstance(node, ast.Assign) else [node.target]
                )
                names = {
                    t.attr if isinstance(t, ast.Attribute) else getattr(t, "id", None)
                    for t in targets
                }
                if "_attr_translation_key" not in names or node.value is None:
                    continue
                value = node.value
            else:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                keys.add(value.value)
    return found


def check_icons(component: Path) -> list[str]:
    """Check icons.json against the entities and the states in strings.json."""
    problems: list[str] = []
    icons = _load_json(component / "icons.json", problems)
    strings = _load_json(component / "strings.json", problems)
    if not isinstance(icons, dict) or not isinstance(strings, dict):
        return problems
    used = entity_translation_keys(component)
    entity_icons: dict[str, Any] = icons.get("entity", {})
    entity_texts: dict[str, Any] = strings.get("entity", {})

    for platform, keys in used.items():
        problems.extend(
            f"icons.json: no icon for {platform} entity {key!r}"
            for key in sorted(keys)
            if key not in entity_icons.get(platform, {})
        )
    for platform, entities in entity_icons.items():
        for key, entry in entities.items():
            if key not in used.get(platform, set()):
                problems.append(
                    f"icons.json: entity.{platform}.{key} names an entity that does"
                    " not exist"
                )
                continue
            if not isinstance(entry, dict) or "default" not in entry:
                problems.append(f"icons.json: entity.{platform}.{key} has no default")
                continue
            texts = entity_texts.get(platform, {}).get(key, {})
            known = set(texts.get("state", {}))
            if platform == "binary_sensor":
                known |= {"on", "off"}
            problems.extend(
                f"icons.json: entity.{platform}.{key} has an icon for state"
                f" {state!r}, which strings.json does not have"
                for state in entry.get("state", {})
                if state not in known
            )
            attributes = texts.get("state_attributes", {})
            for attribute, attribute_icons in entry.get("state_attributes", {}).items():
                states = attributes.get(attribute, {}).get("state", {})
                problems.extend(
                    f"icons.json: entity.{platform}.{key} attribute {attribute} has"
                    f" an icon for state {state!r}, which strings.json does not have"
                    for state in attribute_icons.get("state", {})
                    if state not in states
                )
    return problems


# === forward compatibility ====================================================


@dataclass
class ImportedName:
    """A name the integration takes from a `homeassistant` module."""

    module: str
    name: str | None
    """None for `import homeassistant.x` (only the module must exist)."""
    where: str
    attributes: set[str] = field(default_factory=set)
    """Attributes read from the name, for names that are modules."""


def _module_functions(tree: ast.Module) -> dict[str, str]:
    """Return {function: module} for functions that import and return a module."""
    found: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        bound: dict[str, str] = {}
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
                for alias in stmt.names:
                    bound[alias.asname or alias.name] = f"{stmt.module}.{alias.name}"
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        bound[alias.asname] = alias.name
            elif (
                isinstance(stmt, ast.Return)
                and isinstance(stmt.value, ast.Name)
                and stmt.value.id in bound
            ):
                found[node.name] = bound[stmt.value.id]
    return found


def collect_ha_imports(component: Path) -> list[ImportedName]:
    """Return every `homeassistant` name the integration's modules import.

    Attribute reads on an imported name (`dr.async_get`) and on the result of
    a function that imports and returns a module (`_cloud().async_...`) are
    kept, to be checked when the name turns out to be a module.
    """
    imported: list[ImportedName] = []
    for path in sorted(component.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(component.parent.parent)
        by_alias: dict[str, ImportedName] = {}
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module.split(".")[0] != "homeassistant":
                    continue
                for alias in node.names:
                    item = ImportedName(node.module, alias.name, where)
                    imported.append(item)
                    by_alias[alias.asname or alias.name] = item
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] != "homeassistant":
                        continue
                    item = ImportedName(alias.name, None, where)
                    imported.append(item)
                    if alias.asname:
                        by_alias[alias.asname] = item
        returned = _module_functions(tree)
        for function, dotted in returned.items():
            module, _, name = dotted.rpartition(".")
            item = ImportedName(module, name, f"{rel} ({function}())")
            imported.append(item)
            by_alias[f"{function}()"] = item
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            value = node.value
            if isinstance(value, ast.Name):
                alias_name = value.id
            elif (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and not value.args
            ):
                alias_name = f"{value.func.id}()"
            else:
                continue
            if alias_name in by_alias:
                by_alias[alias_name].attributes.add(node.attr)
    return imported


class SourceTree:
    """The Python files of a Home Assistant release: a wheel or a directory."""

    def __init__(self, path: Path) -> None:
        """Open `path`, a .whl file or a directory holding `homeassistant/`."""
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None
        self._names = set(self._zip.namelist()) if self._zip else None
        self._cache: dict[str, set[str] | None] = {}

    def read(self, relpath: str) -> str | None:
        """Return the text of `relpath` (posix, from the root), None if absent."""
        if self._zip is not None:
            if relpath not in (self._names or set()):
                return None
            return self._zip.read(relpath).decode("utf-8")
        file = self.path / relpath
        return file.read_text(encoding="utf-8") if file.is_file() else None

    def files_named(self, folder: str, name: str) -> list[str]:
        """Return the paths of files called `name` one level below `folder`."""
        if self._names is not None:
            return sorted(
                path
                for path in self._names
                if path.startswith(f"{folder}/")
                and path.count("/") == folder.count("/") + 2
                and path.endswith(f"/{name}")
            )
        return sorted(
            file.relative_to(self.path).as_posix()
            for file in (self.path / folder).glob(f"*/{name}")
        )

    def module_source(self, module: str) -> str | None:
        """Return the source of a dotted module (a .py or a package)."""
        base = module.replace(".", "/")
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            text = self.read(candidate)
            if text is not None:
                return text
        return None

    def is_package(self, module: str) -> bool:
        """Tell whether a dotted module is a package."""
        return self.read(f"{module.replace('.', '/')}/__init__.py") is not None

    def defined_names(
        self, module: str, _seen: frozenset[str] = frozenset()
    ) -> set[str]:
        """Return the names a module defines or re-exports at its top level."""
        if module in self._cache:
            return self._cache[module] or set()
        source = self.module_source(module)
        if source is None:
            return set()
        names, star_modules = top_level_names(source, module, self.is_package(module))
        for star in star_modules:
            if star not in _seen:
                names |= self.defined_names(star, _seen | {module})
        self._cache[module] = names
        return names


_EXCEPT_TUPLE = re.compile(
    r"^(\s*except\*?\s+)([^()\n:]+,[^()\n:]+?)(\s+as\s+\w+)?:", re.MULTILINE
)


def _parse(source: str) -> ast.Module | None:
    """Parse a module written for a newer Python, as far as Python 3.13 can.

    Python 3.14 allows `except A, B:`; that is rewritten to `except (A, B):`.
    Returns None when the source still does not parse.
    """
    for text in (source, _EXCEPT_TUPLE.sub(r"\1(\2)\3:", source)):
        try:
            return ast.parse(text)
        except SyntaxError:
            continue
    return None


def _absolute(module: str, level: int, target: str | None, is_package: bool) -> str:
    """Return the absolute module of a relative import inside `module`."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, target] if target else parts)


def _statement_names(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield top-level statements, entering if/try/with blocks."""
    for stmt in statements:
        yield stmt
        if isinstance(stmt, ast.If | ast.With | ast.AsyncWith):
            yield from _statement_names(stmt.body)
            if isinstance(stmt, ast.If):
                yield from _statement_names(stmt.orelse)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _statement_names(block)
            for handler in stmt.handlers:
                yield from _statement_names(handler.body)


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _target_names(element)


def top_level_names(
    source: str, module: str, is_package: bool
) -> tuple[set[str], list[str]]:
    """Return (names defined at the top of `source`, modules it star-imports)."""
    tree = _parse(source)
    if tree is None:
        return _text_names(source), []
    names: set[str] = set()
    stars: list[str] = []
    for stmt in _statement_names(tree.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                names.update(_target_names(target))
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
            names.update(_target_names(stmt.target))
        elif isinstance(stmt, ast.TypeAlias):
            names.update(_target_names(stmt.name))
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    target = stmt.module or ""
                    if stmt.level:
                        target = _absolute(module, stmt.level, stmt.module, is_package)
                    stars.append(target)
                else:
                    names.add(alias.asname or alias.name)
    return names, stars


_TEXT_DEF = re.compile(r"^(?:async\s+)?(?:def|class)\s+(\w+)", re.MULTILINE)
_TEXT_ASSIGN = re.compile(r"^(\w+)\s*(?::|=(?!=))", re.MULTILINE)
_TEXT_IMPORT = re.compile(
    r"^\s*(?:from\s+\S+\s+)?import\s+(?:\(([^)]*)\)|([^\n]+))", re.MULTILINE
)


def _text_names(source: str) -> set[str]:
    """Return the top-level names of a module that cannot be parsed, by text.

    Definitions and assignments are taken at column 0 only; imports anywhere
    (they may sit under `if TYPE_CHECKING:` or `try:`).
    """
    names = set(_TEXT_DEF.findall(source)) | set(_TEXT_ASSIGN.findall(source))
    for group, line in _TEXT_IMPORT.findall(source):
        clause = (group or line).split("#")[0]
        for part in clause.replace("\n", " ").split(","):
            words = part.split()
            if not words:
                continue
            name = words[2] if len(words) == 3 and words[1] == "as" else words[0]
            names.add(name.split(".")[0])
    return names


def check_names(imported: list[ImportedName], tree: SourceTree) -> list[str]:
    """Check that every imported module, name and module attribute exists."""
    problems: list[str] = []
    checked: set[tuple[str, str | None, frozenset[str]]] = set()
    for item in imported:
        key = (item.module, item.name, frozenset(item.attributes))
        if key in checked:
            continue
        checked.add(key)
        if tree.module_source(item.module) is None:
            problems.append(f"{item.where}: module {item.module} does not exist")
            continue
        target = item.module
        if item.name is not None:
            submodule = f"{item.module}.{item.name}"
            if tree.module_source(submodule) is not None:
                target = submodule
            elif item.name in tree.defined_names(item.module):
                continue
            else:
                problems.append(f"{item.where}: {item.module} has no {item.name!r}")
                continue
        defined = tree.defined_names(target)
        for attribute in sorted(item.attributes):
            if attribute in defined or tree.module_source(f"{target}.{attribute}"):
                continue
            problems.append(f"{item.where}: {target} has no {attribute!r}")
    return problems


QUALITY_RULE_QUORUM = 5
"""Core integrations that must name a rule before ours must name it too."""


def check_rules_of_release(component: Path, tree: SourceTree) -> list[str]:
    """Check that quality_scale.yaml names the rules the release's core uses.

    Home Assistant adds quality-scale rules over time (docs-triggers and
    docs-conditions came after 2025.4). The rules are defined in hassfest,
    which the wheel does not ship, but the core integrations' own
    quality_scale.yaml files name them: a rule that several of them name and
    ours does not is missing here.
    """
    named: dict[str, int] = {}
    for path in tree.files_named("homeassistant/components", "quality_scale.yaml"):
        text = tree.read(path) or ""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        rules = data.get("rules") if isinstance(data, dict) else None
        if isinstance(rules, dict):
            for rule in rules:
                named[rule] = named.get(rule, 0) + 1
    try:
        ours = yaml.safe_load((component / "quality_scale.yaml").read_text("utf-8"))
        our_rules = set(ours["rules"])
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return ["quality_scale.yaml: cannot be read"]
    return [
        f"quality_scale.yaml: missing rule {rule}, which {count} core"
        " integrations of this release name"
        for rule, count in sorted(named.items())
        if count >= QUALITY_RULE_QUORUM and rule not in our_rules
    ]


def check_forward_compat(component: Path, source: Path) -> list[str]:
    """Check the integration's Home Assistant imports against `source`."""
    tree = SourceTree(source)
    return check_names(collect_ha_imports(component), tree)


def _wheel_version(wheel: Path) -> AwesomeVersion:
    return AwesomeVersion(wheel.name.split("-")[1])


def cached_wheel(cache: Path) -> Path | None:
    """Return the newest Home Assistant wheel in `cache`, if any."""
    wheels = sorted(cache.glob("homeassistant-*.whl"), key=_wheel_version)
    return wheels[-1] if wheels else None


def fetch_wheel(cache: Path, refresh: bool) -> tuple[Path | None, str]:
    """Return (the newest Home Assistant wheel, how it was found).

    A cached wheel is reused unless `refresh`; otherwise pip downloads the
    newest one for Python 3.14 (it is py3-none-any) and older ones are
    removed. (None, reason) when there is no wheel to be had.
    """
    cached = cached_wheel(cache)
    if cached is not None and not refresh:
        return cached, "cached; --refresh looks for a newer one"
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        WHEEL_PYTHON,
        "--disable-pip-version-check",
        "--quiet",
        "homeassistant",
        "-d",
        str(cache),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return cached, f"download failed: {err}"
    newest = cached_wheel(cache)
    if result.returncode != 0 or newest is None:
        lines = [
            line
            for line in result.stderr.splitlines()
            if "is ignored: it is neither a file nor a directory" not in line
        ]
        reason = lines[-1] if lines else f"pip exited with {result.returncode}"
        return cached, f"download failed: {reason}"
    for wheel in cache.glob("homeassistant-*.whl"):
        if wheel != newest:
            wheel.unlink()
    return newest, "downloaded"


# === main =====================================================================


def _report(title: str, problems: list[str]) -> bool:
    """Print one line for a check and one per problem; True when it passed."""
    if problems:
        print(f"FAIL {title}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"       - {problem}")
        return False
    print(f"ok   {title}")
    return True


def run(
    component: Path,
    hacs_file: Path,
    forward: Callable[[], tuple[Path | None, str]] | None,
    strict: bool = False,
) -> bool:
    """Run every check on `component`; True when all passed.

    `forward` returns the Home Assistant wheel to check imports against (None
    skips the forward-compatibility check).
    """
    results = [
        _report("manifest.json", check_manifest(component)),
        _report("hacs.json", check_hacs(hacs_file)),
        _report("strings.json / translations (en, ru)", check_translations(component)),
        _report("quality_scale.yaml", check_quality_scale(component)),
        _report("icons.json", check_icons(component)),
    ]
    if forward is None:
        print("skip forward compatibility (--offline)")
    else:
        wheel, how = forward()
        if wheel is None:
            message = f"forward compatibility: no Home Assistant wheel ({how})"
            if strict:
                results.append(_report(message, [how]))
            else:
                print(f"WARN {message}; skipped (--strict makes this a failure)")
        else:
            if how.startswith("download failed"):
                print(f"WARN {how}; using the cached wheel")
                how = "cached"
            version = _wheel_version(wheel)
            imported = collect_ha_imports(component)
            tree = SourceTree(wheel)
            results.append(
                _report(
                    f"forward compatibility: {len(imported)} imports checked against"
                    f" Home Assistant {version} ({how})",
                    check_names(imported, tree),
                )
            )
            results.append(
                _report(
                    f"quality_scale.yaml names the rules of Home Assistant {version}",
                    check_rules_of_release(component, tree),
                )
            )
    return all(results)


def main(argv: list[str] | None = None) -> int:
    """Run the checks on this repository; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refresh", action="store_true", help="download again")
    parser.add_argument(
        "--strict", action="store_true", help="fail when no wheel can be had"
    )
    parser.add_argument(
        "--offline", action="store_true", help="skip the forward-compat check"
    )
    parser.add_argument("--component", type=Path, default=COMPONENT)
    args = parser.parse_args(argv)

    def forward() -> tuple[Path | None, str]:
        return fetch_wheel(WHEEL_CACHE, args.refresh)

    passed = run(
        args.component,
        ROOT / "hacs.json",
        None if args.offline else forward,
        strict=args.strict,
    )
    print(
        "scripts/validate: all checks passed" if passed else "scripts/validate: FAILED"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
