"""The package's layout rules, checked on its source (no import needed).

* No module imports an underscore-prefixed name from another module of the
  package, or reads one as an attribute of an imported module (a private
  *module* with public-named functions, like ``_validation.py``, is the way to
  share helpers). Inheritance is not a reach-in: a subclass may extend its
  base's private class attributes.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_brain"


def _module_name(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(current, is_package, level, module):
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_private(name):
    return name.startswith("_") and not name.startswith("__")


def private_reach_ins(root):
    """``(file, line, what)`` for every cross-module use of a private name."""
    found = []
    for path in sorted(root.rglob("*.py")):
        current = _module_name(path, root)
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = (_resolve(current, is_package, node.level, node.module) if node.level
                          else node.module or "")
                if target.split(".")[0] != root.name:
                    continue
                for alias in node.names:
                    if _is_private(alias.name) and target != current:
                        found.append((path.name, node.lineno, f"from {target} import {alias.name}"))
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == root.name:
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        bases = {b.id for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                 for b in node.bases if isinstance(b, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.value.id not in bases
                    and _is_private(node.attr)):
                found.append((path.name, node.lineno, f"{node.value.id}.{node.attr}"))
    return found


def test_no_private_names_across_modules():
    found = private_reach_ins(PACKAGE)
    assert not found, "\n".join(f"{f}:{line}: {what}" for f, line, what in found)


def test_the_check_finds_reach_ins(tmp_path):
    pkg = tmp_path / "sklearn_brain"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_util.py").write_text("def _helper():\n    pass\n\n\ndef helper():\n    pass\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text(
        "from .. import _util\nfrom .._util import _helper, helper\n\n"
        "def f():\n    return _util._helper(), _helper(), helper()\n")
    found = sorted(what for _, _, what in private_reach_ins(pkg))
    assert found == ["_util._helper", "from sklearn_brain import _util",
                     "from sklearn_brain._util import _helper"]
    (pkg / "sub" / "a.py").write_text("from .._util import helper\n\n\ndef f():\n"
                                      "    return helper()\n")
    assert private_reach_ins(pkg) == []
