"""The import rules of docs/architecture.md, held against the code.

Each rule keeps one boundary: the real-time plumbing knows no feature, the socket
layer touches no ORM, the wire format does no I/O, and the features never reach
back into the socket.
"""

import ast
import re
from pathlib import Path

import pytest

CHAT = Path(__file__).resolve().parent.parent / "chat"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # `from chat import presence` imports chat.presence.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _files(*patterns: str) -> list[Path]:
    return sorted(path for pattern in patterns for path in CHAT.glob(pattern))


def _offending(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        bad = sorted(
            name
            for name in _imports(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        )
        if bad:
            found[path.name] = bad
    return found


RULES = {
    "the real-time plumbing imports no feature": (
        ["realtime/*.py"],
        (
            "chat.messaging",
            "chat.presence",
            "chat.models",
            "chat.selectors",
            "chat.handlers",
            "chat.consumers",
            "chat.accounts",
            "django.db.models",
        ),
    ),
    # The plumbing counts into chat/metrics.py, so that module is plumbing too.
    "the metrics the plumbing counts into import no feature": (
        ["metrics.py"],
        (
            "chat.messaging",
            "chat.presence",
            "chat.models",
            "chat.selectors",
            "chat.handlers",
            "chat.consumers",
            "chat.accounts",
            "chat.live",
            "django.db.models",
        ),
    ),
    "the socket layer imports no ORM": (
        ["consumers.py", "handlers.py"],
        ("django.db", "chat.models"),
    ),
    "the wire format does no I/O and knows no other chat module but its errors": (
        ["protocol.py"],
        ("django", "channels", "redis", "chat.messaging", "chat.realtime", "chat.models"),
    ),
    "features never reach back into the socket": (
        [
            "messaging/*.py",
            "files/*.py",
            "presence.py",
            "accounts.py",
            "selectors.py",
            "signals.py",
        ],
        ("chat.consumers", "chat.handlers"),
    ),
}


def test_every_rule_looks_at_some_files():
    for patterns, _ in RULES.values():
        assert _files(*patterns)


@pytest.mark.parametrize("rule", RULES)
def test_import_rule(rule):
    patterns, forbidden = RULES[rule]
    assert _offending(_files(*patterns), forbidden) == {}


def test_a_forbidden_import_is_noticed(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from chat import models\n\ndef f():\n    from django.db import connection\n")
    assert _offending([module], ("chat.models", "django.db")) == {
        "bad.py": ["chat.models", "django.db", "django.db.connection"]
    }


STATIC = CHAT.parent / "static" / "chat"
STATE_MODULES = (
    "store",
    "conversation",
    "catchup",
    "handlers",
    "reading",
    "typing",
    "protocol",
    # Pure logic of the page's features: words, times, decisions; no DOM of the page.
    "announce",
    "format",
    "keyboard",
    "mentions",
    "notices",
    "presence",
    "search",
    "timeline",
    "uploads",
)
VIEW_AND_SOCKET = (
    "view.js",
    "sidebar.js",
    "message-row.js",
    "message-actions.js",
    "dom.js",
    "socket.js",
    "app.js",
    "mention-picker.js",
    "search-panel.js",
    "composer-files.js",
    "attachments.js",
    "image-viewer.js",
)


def _js_imports(path: Path) -> set[str]:
    """The files an ES module imports from this folder."""
    return set(re.findall(r"""(?:import|from)\s+['"]\./([\w.-]+)['"]""", path.read_text()))


def test_the_pages_state_modules_import_no_view_and_no_socket():
    for name in STATE_MODULES:
        imported = _js_imports(STATIC / f"{name}.js")
        assert not imported & set(VIEW_AND_SOCKET), f"{name}.js imports {imported}"


def test_the_js_import_rule_sees_imports():
    assert "protocol.js" in _js_imports(STATIC / "store.js")
