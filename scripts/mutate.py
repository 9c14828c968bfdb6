"""Mutation testing of the parsing and call-tracking code: plant bugs, run tests.

Run it as `scripts/mutate` (it sets up `.venv` first). For each module in
`MODULES` it plants one small bug at a time (a mutant: `<` made `<=`, `and`
made `or`, a constant changed, a statement removed ...), runs the fast tests
that cover the module against it, and counts the mutant killed when a test
fails. A mutant no test kills is a survivor: either a gap in the tests, or an
equivalent mutant that cannot change behaviour, explained in `EQUIVALENT`.

The repository is never touched: each of the two worker slots is a copy of
it in a temporary directory. Home Assistant and the test harness are imported
once; every mutant runs in a child forked from that process, which imports
the project (and its mutant) afresh, so one mutant costs about a second.

    scripts/mutate                 all modules
    scripts/mutate calls           modules whose path contains "calls"
    scripts/mutate --list          print the mutants, run nothing

Exit status: 0 when every survivor is explained, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable, Iterator, Sequence
import copy
from dataclasses import dataclass, field
import importlib
import os
from pathlib import Path
import pkgutil
import shutil
import signal
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
PKG = "custom_components/sprecord"

MODULES: dict[str, list[str]] = {
    f"{PKG}/api/sse.py": ["tests/test_sse.py", "tests/test_mutants_sse.py"],
    f"{PKG}/api/models.py": ["tests/test_models.py", "tests/test_mutants_models.py"],
    f"{PKG}/api/storable.py": ["tests/test_models.py", "tests/test_mutants_models.py"],
    f"{PKG}/api/fields.py": [
        "tests/test_models.py",
        "tests/test_mutants_models.py",
        "tests/test_security_events.py",
    ],
    f"{PKG}/api/parse.py": [
        "tests/test_models.py",
        "tests/test_mutants_models.py",
        "tests/test_security_events.py",
    ],
    f"{PKG}/calls.py": ["tests/test_calls.py", "tests/test_mutants_calls.py"],
}
"""Each module and its unit tests: the fast tests that cover it. (The client's
and the integration's tests cover them too, at seconds per mutant.)"""

COPIED = ("custom_components", "emulator", "tests", "pyproject.toml")
"""What a worker slot copies from the repository: all the tests need."""

TIMEOUT = 20.0
"""Seconds a mutant's test run may take (2 to 3 s unmutated): a mutant that
makes a loop endless is counted as killed by the timeout."""

WORKERS = max(1, min(2, os.cpu_count() or 1))

_SSE = f"{PKG}/api/sse.py"
_MODELS = f"{PKG}/api/models.py"
_FIELDS = f"{PKG}/api/fields.py"
_PARSE = f"{PKG}/api/parse.py"
_CALLS = f"{PKG}/calls.py"
_FAST_PATH = (
    "a fast path: without it the line takes the general way below, which "
    "reads it the same (field before the first colon, one leading space off)"
)
_CLEAN_FAST_PATH = (
    "a fast path: `clean_field()` returns printable text of at most "
    "`MAX_NUMBER` characters unchanged"
)
_STORABLE_FAST_PATH = (
    "it only decides whether a scanned event also goes through `_storable()`, "
    "which returns an already storable event unchanged: more often is slower, "
    "not different (too rarely is what the tests catch)"
)

EQUIVALENT: dict[tuple[str, str, str], str] = {
    (_SSE, "SSEParser.__init__", "self._skip_lf = False → self._skip_lf = True"): (
        "it only drops an LF that starts the stream: a blank line before any "
        "data, which dispatches nothing and leaves the resume id as it is"
    ),
    (_SSE, "SSEParser.feed", "if '\\r' in text: → if True:"): (
        "without a CR the replacements change nothing and `_skip_lf` is "
        "already False (reset just above): the test only saves the work"
    ),
    (_SSE, "SSEParser._parse", "if tail: → if True:"): (
        "an empty tail added to the partial line adds nothing to its text or its length"
    ),
    (
        _SSE,
        "SSEParser._process_line",
        "line.startswith('data:') → line.startswith('XXdata:XX')",
    ): _FAST_PATH,
    (
        _SSE,
        "SSEParser._process_line",
        "line.startswith('id: ') → line.startswith('XXid: XX')",
    ): _FAST_PATH,
    (_SSE, "SSEParser._process_line", "colon < 0 → colon <= 0"): (
        "a colon at 0 (a comment) has returned just above"
    ),
    (_SSE, "SSEParser._process_line", "colon < 0 → colon < 1"): (
        "a colon at 0 (a comment) has returned just above"
    ),
    (
        _MODELS,
        "UnknownEvent",
        "event_type: ClassVar[str] = '' → pass",
    ): (
        "UnknownEvent.type returns the name the server gave; the "
        "class attribute is read nowhere"
    ),
    (
        _MODELS,
        "UnknownEvent",
        "event_type: ClassVar[str] = '' → event_type: ClassVar[str] = 'X'",
    ): (
        "UnknownEvent.type returns the name the server gave; the "
        "class attribute is read nowhere"
    ),
    (
        _FIELDS,
        "_from_timestamp",
        "value = float(value) → pass",
    ): (
        "an int reaching it is within 64 bits (larger ones became "
        "text before): it compares and converts as its float does"
    ),
    (
        _PARSE,
        "parse_event",
        (
            "type(raw_payload) is not dict and (not "
            "isinstance(raw_payload, Mapp... → type(raw_payload) is not "
            "dict or not isinstance(raw_payload, Mapping)"
        ),
    ): (
        "after the scanner or `_storable()` every JSON object is a "
        "dict: both tests say the same"
    ),
    (_PARSE, "_envelope", "-1 → -2"): "any negative end means 'not read', as -1 does",
    (
        _PARSE,
        "_envelope",
        (
            "if raw.count('{') + raw.count('[') > MAX_NESTING or "
            "('\\\\u' in raw and _ESCAPED_SURROGATE.search(raw)) or (not "
            "raw.isascii() and _SURROGATE.search(raw)): → if True:"
        ),
    ): _STORABLE_FAST_PATH,
    (
        _PARSE,
        "_envelope",
        (
            "raw.count('{') + raw.count('[') > MAX_NESTING → "
            "raw.count('{') + raw.count('[') >= MAX_NESTING"
        ),
    ): _STORABLE_FAST_PATH,
    (
        _PARSE,
        "_envelope",
        (
            "'\\\\u' in raw and _ESCAPED_SURROGATE.search(raw) → '\\\\u' "
            "in raw or _ESCAPED_SURROGATE.search(raw)"
        ),
    ): _STORABLE_FAST_PATH,
    (
        _PARSE,
        "_envelope",
        (
            "not raw.isascii() and _SURROGATE.search(raw) → not "
            "raw.isascii() or _SURROGATE.search(raw)"
        ),
    ): _STORABLE_FAST_PATH,
    (
        _FIELDS,
        "_extra",
        "raw.keys() <= known → raw.keys() < known",
    ): (
        "the comprehension gives {} too when no key is unknown; the "
        "test only saves building it"
    ),
    (
        _FIELDS,
        "_identifier",
        "if not (len(text) <= MAX_NUMBER and text.isprintable()): → if True:",
    ): _CLEAN_FAST_PATH,
    (
        _FIELDS,
        "_identifier",
        "len(text) <= MAX_NUMBER → len(text) < MAX_NUMBER",
    ): _CLEAN_FAST_PATH,
    (
        _FIELDS,
        "_number",
        "len(text) <= MAX_NUMBER → len(text) < MAX_NUMBER",
    ): _CLEAN_FAST_PATH,
    (
        _FIELDS,
        "_optional_int",
        "if type(value) is not int: → if True:",
    ): "a fast path: an int passes the general checks below unchanged",
    (
        _CALLS,
        "CallTracker._apply_call_event",
        "del self._finished[event.call_id] → pass",
    ): (
        "the reused id's old entry stays until the new call finishes (which "
        "writes the same key) or the hour passes; meanwhile the new call's "
        "events find it in `active` first, and a repeated start finds the old "
        "entry past its minute either way"
    ),
    (
        _CALLS,
        "CallTracker.recall_expired",
        "call.state = CallState.IDLE → pass",
    ): (
        "only calls with an end are taken back, and a call with an end is "
        "idle however it was made: `Call.from_dict()` (so "
        "`saved_expired_call()`) builds it idle, and `_finish()` sets the end "
        "and idle together"
    ),
}
"""(module, function, mutation) of a survivor that cannot change behaviour,
and why. A mutation is written as the script prints it; the function is the
qualified name of the function (or class) it is in, `<module>` at top level.
"""

SKIPPED_FUNCTIONS = frozenset({"__repr__"})


@dataclass(frozen=True, slots=True)
class Mutant:
    """One planted bug: the node it replaces and how."""

    module: str
    ordinal: int
    """Position of the node in `_walk()` order."""
    variant: int
    """Which of the node's mutations."""
    line: int
    scope: str
    original: str
    mutated: str

    @property
    def text(self) -> str:
        """Return the mutation as printed: `original → mutated`."""
        return f"{self.original} → {self.mutated}"

    @property
    def key(self) -> tuple[str, str, str]:
        """Return the key of the mutant in `EQUIVALENT`."""
        return (self.module, self.scope, self.text)


@dataclass(slots=True)
class Result:
    """How a mutant fared."""

    mutant: Mutant
    outcome: str  # "killed", "survived", "timeout"
    seconds: float


# --- finding mutation points -------------------------------------------------

_SWAP_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_SWAP_BINOP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
_SIMPLE_STATEMENTS = (
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Delete,
    ast.Break,
    ast.Continue,
    ast.Raise,
)

Mutation = Callable[[ast.AST], ast.AST]


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _skipped_field(node: ast.AST, name: str) -> bool:
    """Tell whether a child field holds no behaviour worth mutating."""
    if name in {"annotation", "returns", "decorator_list", "type_comment"}:
        return True
    if isinstance(node, ast.Raise) and name in {"exc", "cause"}:
        return True  # the error's class and message: the raise itself is mutated
    if isinstance(node, ast.Call) and name in {"args", "keywords"}:
        func = node.func
        return isinstance(func, ast.Name) and func.id == "ProtocolError"
    return isinstance(node, ast.JoinedStr)  # message texts


def _walk(
    tree: ast.AST,
) -> Iterator[tuple[ast.AST, ast.AST | None, str, int | None, str]]:
    """Yield (node, parent, field, index, scope) in a fixed pre-order."""

    def visit(
        node: ast.AST,
        parent: ast.AST | None,
        name: str,
        index: int | None,
        scope: str,
    ) -> Iterator[tuple[ast.AST, ast.AST | None, str, int | None, str]]:
        yield node, parent, name, index, scope
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in SKIPPED_FUNCTIONS:
                return
            scope = node.name if scope == "<module>" else f"{scope}.{node.name}"
        if isinstance(node, ast.ImportFrom | ast.Import) or _is_slots(node):
            return
        for child_name, value in ast.iter_fields(node):
            if _skipped_field(node, child_name):
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST) and not _is_docstring(item):
                        yield from visit(item, node, child_name, i, scope)
            elif isinstance(value, ast.AST):
                yield from visit(value, node, child_name, None, scope)

    return visit(tree, None, "", None, "<module>")


def _mutations(node: ast.AST, parent: ast.AST | None) -> list[Mutation]:
    """Return the mutations of one node, each a function of a copy of it."""
    found: list[Mutation] = []
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _SWAP_COMPARE:

                def swap(n: ast.AST, i: int = i) -> ast.AST:
                    ops = _node(n, ast.Compare).ops
                    ops[i] = _SWAP_COMPARE[type(ops[i])]()
                    return n

                found.append(swap)
    elif isinstance(node, ast.BoolOp):

        def flip(n: ast.AST) -> ast.AST:
            boolop = _node(n, ast.BoolOp)
            boolop.op = ast.Or() if isinstance(boolop.op, ast.And) else ast.And()
            return n

        found.append(flip)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        found.append(lambda n: _node(n, ast.UnaryOp).operand)
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _SWAP_BINOP:

        def arith(n: ast.AST) -> ast.AST:
            if isinstance(n, ast.BinOp | ast.AugAssign):
                n.op = _SWAP_BINOP[type(n.op)]()
            return n

        found.append(arith)
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            found.append(lambda _: ast.Constant(not value))
        elif isinstance(value, int):
            found.append(lambda _: ast.Constant(value + 1))
        elif isinstance(value, str) and not isinstance(parent, ast.JoinedStr):
            found.append(lambda _: ast.Constant(f"XX{value}XX" if value else "X"))
    elif isinstance(node, ast.Return) and not (
        node.value is None
        or (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        found.append(lambda _: ast.Return(ast.Constant(None)))
    elif isinstance(node, ast.If | ast.While) and not (
        isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ):
        # An `if` loses its guard (its body always runs: removing the body is
        # covered by removing its statements); a loop never runs.
        for constant in (isinstance(node, ast.If),):

            def fixed(n: ast.AST, constant: bool = constant) -> ast.AST:
                if isinstance(n, ast.If | ast.While):
                    n.test = ast.Constant(constant)
                return n

            found.append(fixed)
    if (
        isinstance(node, _SIMPLE_STATEMENTS)
        and not _is_docstring(node)
        and not _is_slots(node)
        and not (isinstance(node, ast.AnnAssign) and node.value is None)
    ):
        found.append(lambda _: ast.Pass())
    return found


def _node[T: ast.AST](node: ast.AST, kind: type[T]) -> T:
    """Return the node as the kind its mutation expects."""
    if not isinstance(node, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(node).__name__}")
    return node


def _is_slots(node: ast.AST) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
    )


def _show(node: ast.AST) -> str:
    """Return a node as one short line of source."""
    if isinstance(node, ast.If | ast.While):
        keyword = "if" if isinstance(node, ast.If) else "while"
        return f"{keyword} {ast.unparse(node.test)}:"
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= 70 else text[:67] + "..."


def find_mutants(module: str, source: str) -> list[Mutant]:
    """Return every mutant of one module's source."""
    mutants: list[Mutant] = []
    for ordinal, (node, parent, name, index, scope) in enumerate(
        _walk(ast.parse(source))
    ):
        for variant, mutation in enumerate(_mutations(node, parent)):
            mutated = mutation(copy.deepcopy(node))
            original_text, mutated_text = _show(node), _show(mutated)
            if isinstance(node, ast.Constant) and isinstance(
                parent, (ast.expr, ast.Return, *_SIMPLE_STATEMENTS)
            ):
                # A bare `0 → 1` says little: show the expression around it.
                whole = copy.deepcopy(parent)
                if index is None:
                    setattr(whole, name, mutated)
                else:
                    getattr(whole, name)[index] = mutated
                original_text, mutated_text = _show(parent), _show(whole)
            if original_text == mutated_text:
                continue
            mutants.append(
                Mutant(
                    module=module,
                    ordinal=ordinal,
                    variant=variant,
                    line=getattr(node, "lineno", 0),
                    scope=scope,
                    original=original_text,
                    mutated=mutated_text,
                )
            )
    return mutants


def mutant_source(source: str, mutant: Mutant) -> str:
    """Return the module's source with one mutant planted."""
    tree = ast.parse(source)
    for ordinal, (node, parent, name, index, _scope) in enumerate(_walk(tree)):
        if ordinal != mutant.ordinal:
            continue
        mutation = _mutations(node, parent)[mutant.variant]
        replacement = mutation(node)
        if parent is None:
            raise LookupError("the module itself is not mutated")
        if index is None:
            setattr(parent, name, replacement)
        else:
            getattr(parent, name)[index] = replacement
        return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    raise LookupError(f"no node {mutant.ordinal} in {mutant.module}")


# --- running tests in forked children --------------------------------------


def _tests(module: str) -> list[str]:
    """Return the test files of a module that exist."""
    return [test for test in MODULES[module] if (ROOT / test).exists()]


def _preimport() -> None:
    """Import the heavy, unmutated part once: Home Assistant and the harness."""
    # The harness patches the recorder before Home Assistant imports it.
    # Hypothesis's plugin imports hypothesis only when the run ends.
    for name in (
        "pytest",
        "pytest_homeassistant_custom_component.plugins",
        "pytest_homeassistant_custom_component.common",
        "homeassistant.core",
        "hypothesis.strategies",
    ):
        importlib.import_module(name)

    # Everything the project and its tests import, imported once: each child
    # then imports only the project's own modules (purged again below).
    sys.path.insert(0, str(ROOT))
    try:
        importlib.import_module("tests.conftest")
        package = importlib.import_module(PKG.replace("/", "."))
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
        for module in MODULES:
            for test in _tests(module):
                importlib.import_module(test.removesuffix(".py").replace("/", "."))
    finally:
        sys.path.remove(str(ROOT))
        _purge()


def _purge() -> None:
    """Forget the project's modules, so the next import reads them from disk."""
    for name in list(sys.modules):
        if name.split(".")[0] in _PROJECT_MODULES:
            del sys.modules[name]


_PROJECT_MODULES = ("custom_components", "emulator", "tests", "conftest")


def _child(slot: Path, tests: list[str], log: Path) -> None:
    """Run the tests in a forked child against the slot's files; never return."""
    code = 3
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(slot)
        _purge()
        sys.path[:] = [str(slot), *(p for p in sys.path if p != str(ROOT))]
        import pytest  # noqa: PLC0415

        code = int(
            pytest.main(
                [
                    "-x",
                    "-q",
                    "--assert=plain",  # rewriting costs seconds; a failure is enough
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:sugar",
                    "-p",
                    "no:cov",
                    *tests,
                ]
            )
        )
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # a forked child must not run the parent's exit handlers


@dataclass(slots=True)
class _Slot:
    path: Path
    pid: int = 0
    started: float = 0.0
    mutant: Mutant | None = None
    restore: tuple[Path, str] | None = None
    log: Path = field(default_factory=Path)


def _make_slot(base: Path, number: int) -> _Slot:
    path = base / f"slot{number}"
    path.mkdir()
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src,
                path / name,
                ignore=shutil.ignore_patterns(
                    "__pycache__", "*.pyc", ".hypothesis", ".pytest_cache"
                ),
            )
        elif src.exists():
            shutil.copy2(src, path / name)
    return _Slot(path=path, log=base / f"slot{number}.log")


def _drop_pyc(module: Path) -> None:
    """Remove a module's cached bytecode: a mutant must never meet a stale .pyc.

    (The cache tells sources apart by size and mtime in seconds, and many
    mutants keep the size.) The other modules' bytecode is kept and reused.
    """
    for pyc in (module.parent / "__pycache__").glob(f"{module.stem}.*.pyc"):
        pyc.unlink()


def run_mutants(
    jobs: Sequence[tuple[Mutant, str | None]],
    slots: list[_Slot],
    progress: Callable[[Result], None],
) -> list[Result]:
    """Run each (mutant, its source) in a free slot; None runs the unmutated code."""
    results: list[Result] = []
    pending = list(jobs)
    busy: dict[int, _Slot] = {}
    try:
        _run(pending, busy, slots, results, progress)
    finally:
        for pid in busy:  # interrupted: leave no child behind
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return results


def _run(
    pending: list[tuple[Mutant, str | None]],
    busy: dict[int, _Slot],
    slots: list[_Slot],
    results: list[Result],
    progress: Callable[[Result], None],
) -> None:
    """Keep every slot busy with the next mutant until all are done."""
    while pending or busy:
        for slot in slots:
            if slot.pid or not pending:
                continue
            mutant, source = pending.pop(0)
            target = slot.path / mutant.module
            if source is not None:
                slot.restore = (target, target.read_text(encoding="utf-8"))
                _drop_pyc(target)
                target.write_text(source, encoding="utf-8")
            slot.mutant = mutant
            slot.started = time.monotonic()
            pid = os.fork()
            if pid == 0:
                _child(slot.path, _tests(mutant.module), slot.log)
            slot.pid = pid
            busy[pid] = slot
        pid, status = os.waitpid(-1, os.WNOHANG)
        finished: list[tuple[_Slot, str]] = []
        if pid:
            slot = busy.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            finished.append((slot, "survived" if code == 0 else "killed"))
        else:
            now = time.monotonic()
            for pid_, slot in list(busy.items()):
                if now - slot.started > TIMEOUT:
                    os.kill(pid_, signal.SIGKILL)
                    os.waitpid(pid_, 0)
                    busy.pop(pid_)
                    finished.append((slot, "timeout"))
            if not finished:
                time.sleep(0.02)
        for slot, outcome in finished:
            if slot.mutant is None:
                continue
            if slot.restore is not None:
                _drop_pyc(slot.restore[0])
                slot.restore[0].write_text(slot.restore[1], encoding="utf-8")
                slot.restore = None
            result = Result(slot.mutant, outcome, time.monotonic() - slot.started)
            if outcome != "killed" and os.environ.get("MUTATE_KEEP_LOGS"):
                shutil.copy(slot.log, slot.path.parent / f"{len(results)}.log")
            results.append(result)
            progress(result)
            slot.pid = 0
            slot.mutant = None


# --- the report ---------------------------------------------------------------


def _baseline(slots: list[_Slot]) -> None:
    """Fail early when the unmutated tests do not pass in a slot."""
    jobs = [
        (Mutant(module, -1, -1, 0, "<module>", "", "(unmutated)"), None)
        for module in MODULES
    ]
    for result in run_mutants(jobs, slots[:1], lambda _: None):
        if result.outcome != "survived":
            log = slots[0].log.read_text(encoding="utf-8", errors="replace")
            print(log[-3000:], file=sys.stderr)
            sys.exit(
                f"mutate: the tests of {result.mutant.module} fail unmutated; "
                "fix them first (scripts/test)"
            )


def main() -> int:
    """Plant the mutants, run the tests, print the score and the survivors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run modules whose path has this")
    parser.add_argument("--list", action="store_true", help="list, do not run")
    args = parser.parse_args()
    modules = [m for m in MODULES if not args.only or any(o in m for o in args.only)]
    sources = {m: (ROOT / m).read_text(encoding="utf-8") for m in modules}
    mutants = [mutant for m in modules for mutant in find_mutants(m, sources[m])]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.module}:{mutant.line}: {mutant.text}  [{mutant.scope}]")
        print(f"{len(mutants)} mutants")
        return 0

    started = time.monotonic()
    # A terminated run still removes its copies (and kills its children).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _preimport()
    print(
        f"mutate: {len(mutants)} mutants in {len(modules)} modules, "
        f"{WORKERS} workers, timeout {TIMEOUT:.0f} s per mutant",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sprecord-mutate-") as tmp:
        slots = [_make_slot(Path(tmp), n) for n in range(WORKERS)]
        _baseline(slots)
        done = 0

        def progress(result: Result) -> None:
            nonlocal done
            done += 1
            if os.environ.get("MUTATE_VERBOSE"):
                m = result.mutant
                print(
                    f"  {result.outcome:8} {result.seconds:5.1f} s "
                    f"{m.module}:{m.line}: {m.text}",
                    file=sys.stderr,
                    flush=True,
                )
            if done % 25 == 0 or done == len(mutants):
                print(f"  {done}/{len(mutants)}", file=sys.stderr, flush=True)

        jobs = [(m, mutant_source(sources[m.module], m)) for m in mutants]
        results = run_mutants(jobs, slots, progress)
    elapsed = time.monotonic() - started
    return report(modules, results, elapsed)


def report(modules: list[str], results: list[Result], elapsed: float) -> int:
    """Print the score per module and every survivor; return the exit status."""
    unexplained = 0
    used: set[tuple[str, str, str]] = set()
    print()
    print(f"{'module':40} mutants killed survived timeout score")
    lines: list[str] = []
    for module in modules:
        mine = sorted(
            (r for r in results if r.mutant.module == module),
            key=lambda r: (r.mutant.line, r.mutant.ordinal, r.mutant.variant),
        )
        killed = sum(r.outcome == "killed" for r in mine)
        timeouts = sum(r.outcome == "timeout" for r in mine)
        survivors = [r for r in mine if r.outcome == "survived"]
        caught = killed + timeouts
        score = 100 * caught / len(mine) if mine else 100.0
        print(
            f"{module:40} {len(mine):7} {killed:6} {len(survivors):8} "
            f"{timeouts:7} {score:5.1f}%"
        )
        for result in survivors:
            mutant = result.mutant
            where = f"{mutant.module}:{mutant.line}: {mutant.text}"
            reason = EQUIVALENT.get(mutant.key)
            if reason is None:
                unexplained += 1
                lines.append(f"SURVIVED  {where}  [{mutant.scope}]")
            else:
                used.add(mutant.key)
                lines.append(f"explained {where}\n          equivalent: {reason}")
    total = len(results)
    caught = sum(r.outcome != "survived" for r in results)
    score = 100 * caught / total if total else 100.0
    explained = total - caught - unexplained
    print(
        f"{'total':40} {total:7} {'':6} {total - caught:8} {'':7} {score:5.1f}%"
        f"  ({explained} survivors explained as equivalent, {unexplained} not)"
    )
    if lines:
        print()
        print("\n".join(lines))
    stale = [k for k in EQUIVALENT if k[0] in modules and k not in used]
    for key in stale:
        print(f"note: no survivor matches the explanation {key}")
    print(f"\nmutate: {total} mutants run in {elapsed:.0f} s")
    if unexplained:
        print(f"mutate: {unexplained} survivors neither killed nor explained")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
