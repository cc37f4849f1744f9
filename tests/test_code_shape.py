"""Shape rules the code holds itself to (see the README's architecture section)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mfcore"
MAX_PARAMETERS = 20


def _functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue  # click commands take one parameter per option
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                n += (a.vararg is not None) + (a.kwarg is not None)
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", n


def test_no_function_outside_the_cli_takes_more_than_20_parameters():
    too_many = [(name, n) for name, n in _functions() if n > MAX_PARAMETERS]
    assert too_many == []


def test_the_rule_sees_the_compiled_core():
    names = {name.split()[1] for name, _ in _functions()}
    assert {"run_batches", "forward_backward", "emit", "fit_options"} <= names


def test_the_version_is_stated_once_for_both_readers():
    """``mfcore --version`` (the installed metadata) and ``mfcore.__version__`` agree with
    pyproject.toml."""
    import tomllib
    from importlib.metadata import version

    import mfcore
    with open(PACKAGE.parent / "pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["version"]
    assert mfcore.__version__ == declared == version("mfcore")
