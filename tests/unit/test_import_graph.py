"""Dependencies run one way, checked on the source: a forbidden import fails here.

Imports are read with ``ast`` from every module, including imports inside functions (a
function-level import still couples two modules; it only hides the coupling).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "storefront"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, as absolute dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from . import x` imports the submodule x
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


GRAPH = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def offenders(importer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list:
    return sorted(
        (module, target)
        for module, targets in GRAPH.items()
        if within(module, importer)
        for target in targets
        if any(within(target, f) for f in forbidden) and not any(within(target, a) for a in allowed)
    )


def reached(module: str, graph: dict[str, set[str]] = GRAPH) -> set[str]:
    """What ``module`` imports, directly or through the storefront modules it imports (not
    its parent packages, which Python runs first but the module does not need)."""
    found: set[str] = set()
    todo = [module]
    while todo:
        for target in graph.get(todo.pop(), set()) - found:
            found.add(target)
            todo.append(target)
    return found


BANNERS, RENDER, ANALYTICS = (
    f"storefront.klevu.{step}" for step in ("banners", "render", "analytics")
)
RENDER_USES = (RENDER, "storefront.klevu.memo")  # a memo is no Klevu service nor step


def test_the_graph_covers_the_package():
    assert "storefront.klevu.segments.resolver" in GRAPH and "storefront.identity" in GRAPH
    assert "storefront.klevu.segments.resolver" in GRAPH[f"{BANNERS}.placement"]


@pytest.mark.parametrize(
    "importer, forbidden, allowed, why",
    [
        (
            "storefront.klevu",
            (
                "storefront.shop",
                "storefront.identity",
                "storefront.catalog",
                "storefront.simulator",
                "storefront.__main__",
            ),
            (),
            "the Klevu package is the integration; the shop uses it, never the reverse",
        ),
        (
            "storefront.klevu.segments",
            ("storefront.identity", "storefront.klaviyo"),
            (),
            "segments take the visitor's identity as an argument",
        ),
        (
            "storefront.klevu.segments",
            (BANNERS, RENDER, ANALYTICS),
            (),
            "step 1 comes first: it knows nothing of the steps after it",
        ),
        (
            "storefront.klevu.render",
            ("storefront",),
            RENDER_USES,
            "the sandbox turns a template and data into HTML; it knows no Klevu service nor step",
        ),
        (
            ANALYTICS,
            (BANNERS,),
            (),
            "step 4 takes a banner's signed token, not the code that rendered it",
        ),
        (
            BANNERS,
            (ANALYTICS,),
            (f"{ANALYTICS}.events", f"{ANALYTICS}.tokens", f"{ANALYTICS}.shown"),
            "a banner issues its token and registers what it showed with step 4's builders, "
            "never step 4's routes, queue or relay",
        ),
        (
            f"{ANALYTICS}.outbox",
            (f"{ANALYTICS}.relay", "storefront.klevu.client"),
            (),
            "a queue does not know its consumer",
        ),
        (
            "storefront.simulator",
            ("storefront",),
            ("storefront.simulator", "storefront.catalog", "storefront.security"),
            "the simulator shares only the catalog data and the web security layer with the shop",
        ),
        *(
            (product, ("storefront.simulator",), (), "the shop learns the simulator from settings")
            for product in ("storefront.shop", "storefront.identity", "storefront.config")
        ),
    ],
)
def test_forbidden_imports(importer, forbidden, allowed, why):
    assert offenders(importer, forbidden, allowed) == [], why


def test_a_forbidden_import_added_back_is_caught():
    """The checker itself: a function-level import of the shop from the Klevu package counts."""
    source = "def f():\n    from ..shop import bp\n    return bp\n"
    assert "storefront.shop" in imports_in(source, "storefront.klevu")
    assert f"{ANALYTICS}.relay" in imports_in("from .relay import Relay\n", ANALYTICS)
    assert f"{BANNERS}.placement" in imports_in("from ..banners import placement\n", RENDER)


def test_a_step_reaching_into_a_later_one_is_caught(monkeypatch):
    """The per-package rules bite: render importing a banners module is an offender."""
    monkeypatch.setitem(GRAPH, f"{RENDER}.engine", {*GRAPH[f"{RENDER}.engine"], f"{BANNERS}.rules"})
    assert offenders(RENDER, ("storefront",), RENDER_USES) == [
        (f"{RENDER}.engine", f"{BANNERS}.rules")
    ]


PURE = ("storefront.klevu.client", "storefront.klevu.single_flight")
FRAMEWORK = ("flask", "flask_caching", "storefront.klevu.trace")


def framework_in(module: str, graph: dict[str, set[str]] = GRAPH) -> list[str]:
    return sorted(t for t in reached(module, graph) if any(within(t, f) for f in FRAMEWORK))


@pytest.mark.parametrize("module", PURE)
def test_the_client_and_the_single_flight_are_framework_free(module):
    assert module in GRAPH
    assert framework_in(module) == [], (
        "the client and the claim rules are pure: Flask (and the trace, on Flask's g) come in "
        "through the client's on_call hooks, wired in storefront/klevu/__init__.py"
    )


def test_a_framework_import_reached_indirectly_is_caught(monkeypatch):
    """The rule follows imports: Flask reached through a module the client imports counts,
    as does the trace imported directly."""
    breaker = "storefront.klevu.breaker"
    monkeypatch.setitem(GRAPH, breaker, {*GRAPH[breaker], "flask"})
    assert framework_in("storefront.klevu.client") == ["flask"]
    source = "from . import trace\n"
    graph = {"storefront.klevu.single_flight": imports_in(source, "storefront.klevu")}
    assert framework_in("storefront.klevu.single_flight", graph) == ["storefront.klevu.trace"]
