"""The floor plan, enforced (docs/ARCHITECTURE.md): PayChanServer's layers, no import cycles in src/,
every spec section cited anywhere exists in docs/PROTOCOL.md, and nothing points outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SERVER = "paychan_server"
LAYERS = ("api", "domain", "adapters", "operator")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module under src/, by dotted name."""
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@cache
def imports() -> dict[str, frozenset[str]]:
    """module -> every module it imports anywhere in its text (also under TYPE_CHECKING and in functions).

    `from pkg import name` counts as an import of `pkg.name` when that is a module of src/, else of `pkg`.
    """
    mods = modules()
    graph: dict[str, frozenset[str]] = {}
    for name, path in mods.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, path.name == "__init__.py", node)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in mods else target)
        graph[name] = frozenset(found)
    return graph


def _internal_closure(start: str) -> set[str]:
    """Every src/ module reachable from start by imports, start included."""
    seen, todo = {start}, [start]
    graph = imports()
    while todo:
        for dep in graph[todo.pop()]:
            if dep in graph and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _external(mods: set[str]) -> set[str]:
    graph = imports()
    return {dep.split(".")[0] for m in mods for dep in graph[m] if dep not in graph}


def domain_modules() -> list[str]:
    return sorted(m for m in modules() if m.startswith(f"{SERVER}.domain"))


def test_the_graph_sees_the_known_edges() -> None:
    """The graph builder itself: a relative import and a `from pkg import module` both resolve."""
    graph = imports()
    assert f"{SERVER}.domain.ports" in graph[f"{SERVER}.domain.settler"]
    assert f"{SERVER}.domain.service" in graph[f"{SERVER}.wiring"]
    assert "aiohttp" in {d.split(".")[0] for d in graph[f"{SERVER}.app"]}


def test_server_top_level_is_wiring_only() -> None:
    """paychan_server/ holds at most 6 modules at its top; the layers are subpackages."""
    top = sorted(p.name for p in (SRC / SERVER).glob("*.py"))
    assert len(top) <= 6, top
    for layer in LAYERS:
        assert (SRC / SERVER / layer / "__init__.py").is_file(), layer


@pytest.mark.parametrize("module", domain_modules())
def test_domain_depends_on_ports_only(module: str) -> None:
    """The domain imports no aiohttp, no concrete client, no adapter, API or operator module, even indirectly."""
    reach = _internal_closure(module)
    forbidden_layers = {m for m in reach if m.startswith((f"{SERVER}.api", f"{SERVER}.adapters",
                                                           f"{SERVER}.operator", f"{SERVER}.app"))}
    assert not forbidden_layers, f"{module} reaches {sorted(forbidden_layers)}"
    foreign = {m for m in reach if m.split(".")[0] in {"chan_store", "signing_service", "paychan_client"}}
    foreign -= {"chan_store.contract"}  # ChanStore's public contract: pure message types and errors
    assert not foreign, f"{module} reaches another service's modules: {sorted(foreign)}"
    assert not _external(reach) & {"aiohttp", "httpx", "plyvel", "uvloop", "yarl"}, module


def test_no_service_imports_another_services_internals() -> None:
    """Each service package imports the others only through their public contract modules (or not at all)."""
    services = ("paychan_server", "chan_store", "signing_service", "paychan_client")
    public = {"chan_store.client", "chan_store.contract", "signing_service.contract"}
    graph = imports()
    for module, deps in graph.items():
        own = module.split(".")[0]
        if own not in services:
            continue
        for dep in deps:
            other = dep.split(".")[0]
            assert not (other in services and other != own and dep not in public), f"{module} imports {dep}"


def _cycles() -> list[list[str]]:
    graph = {m: {d for d in deps if d in imports()} for m, deps in imports().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_in_src() -> None:
    """No two modules of src/ import each other, directly or around a loop (TYPE_CHECKING imports count)."""
    assert _cycles() == []


SPEC_CITE = re.compile(r"(?:\bspec(?:\s+section)?|§)\s*§?\s*(\d+(?:\.\d+)*)", re.IGNORECASE)


def spec_sections() -> set[str]:
    text = (ROOT / "docs" / "PROTOCOL.md").read_text()
    return set(re.findall(r"^#+\s+(\d+(?:\.\d+)*)\.?\s", text, re.MULTILINE))


def _tracked(*tops: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--", *tops], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / line for line in out.stdout.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in {".py", ".md", ".toml", ".sh", ".txt", ""}]


def test_spec_sections_are_parsed() -> None:
    """The section list is read from the headings: both levels are present."""
    sections = spec_sections()
    assert {"6", "6.4", "7.3", "13.4"} <= sections
    assert "99.9" not in sections


def test_every_cited_spec_section_exists() -> None:
    """Every "spec N.N" or "§N.N" cited in src/, docs/, config/ and README names a section of docs/PROTOCOL.md."""
    sections = spec_sections()
    files = _tracked("src", "docs", "config", "README.md")
    assert len(files) > 50
    missing = []
    for path in files:
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for cited in SPEC_CITE.findall(line):
                if cited not in sections:
                    missing.append(f"{path.relative_to(ROOT)}:{n}: {cited}")
    assert missing == []


def test_citation_pattern_catches_every_form() -> None:
    """The forms used in the code base are all recognised."""
    text = "spec 7.3 step 2; spec §9; (§6.5); spec section 10.6"
    assert SPEC_CITE.findall(text) == ["7.3", "9", "6.5", "10.6"]


def test_nothing_points_outside_the_repository() -> None:
    """README, docs, config and the code link only to files in the repository (no ../shared)."""
    offenders = [str(p.relative_to(ROOT)) for p in _tracked("README.md", "docs", "src", "config", "scripts", "bench")
                 if "../shared" in p.read_text(errors="replace")]
    assert offenders == []
