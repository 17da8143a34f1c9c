"""Loading never runs code from a checkpoint or a config value.

* ``trust_remote_code`` is False unless a model's config opts in
  (``models.<name>.trust_remote_code``);
* weights are loaded as safetensors only, and a hub download never fetches pickles or code;
* every ``torch.load`` unpickles with ``weights_only=True`` (scanned with ``ast``);
* no config value reaches a shell string: no rule interpolates ``{params}`` / ``{config}`` into a
  ``shell:`` command, and ``subprocess`` is called with argument lists, never ``shell=True``.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import types
from pathlib import Path

import pytest
import yaml
from conftest import REPO

PY_ROOTS = [REPO / "src", REPO / "workflow" / "scripts"]
SMK_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]


def python_files() -> list[Path]:
    return sorted(p for root in PY_ROOTS for p in root.rglob("*.py"))


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


# --- trust_remote_code and safetensors at load time ----------------------------------------


class Recorder:
    """Stands in for ``from_pretrained``: records the keyword arguments, returns a dummy."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def patch(self, monkeypatch, cls, name: str):
        recorder = self

        class Dummy:
            def to(self, *_a, **_k):
                return self

            def eval(self):
                return self

            def requires_grad_(self, *_a):
                return self

        def fake(_path, *args, **kwargs):
            recorder.calls.append((name, kwargs))
            return Dummy()

        monkeypatch.setattr(cls, "from_pretrained", fake)


@pytest.fixture
def recorder(monkeypatch):
    import transformers

    rec = Recorder()
    rec.patch(monkeypatch, transformers.AutoModelForCausalLM, "model")
    rec.patch(monkeypatch, transformers.AutoTokenizer, "tokenizer")
    return rec


@pytest.fixture
def prepared(tmp_path) -> Path:
    """A directory that ``load_model`` accepts (a manifest pointing at itself)."""
    (tmp_path / "langarith_model.json").write_text(json.dumps({"source": {}, "path": "."}))
    return tmp_path


def test_load_model_never_trusts_remote_code_by_default_and_wants_safetensors(recorder, prepared):
    from langarith.model.loading import load_model

    load_model(prepared, device="cpu")
    kinds = [name for name, _ in recorder.calls]
    assert kinds == ["model", "tokenizer"]
    for _name, kwargs in recorder.calls:
        assert kwargs.get("trust_remote_code") is False
    assert recorder.calls[0][1].get("use_safetensors") is True


def test_load_model_trusts_remote_code_only_when_asked(recorder, prepared):
    from langarith.model.loading import load_model

    load_model(prepared, device="cpu", trust_remote_code=True)
    assert [kwargs["trust_remote_code"] for _, kwargs in recorder.calls] == [True, True]
    assert recorder.calls[0][1].get("use_safetensors") is True


def test_loading_with_a_device_map_is_as_safe(recorder, prepared):
    from langarith.model.loading import load_model

    load_model(prepared, device_map="auto")
    assert recorder.calls[0][1].get("device_map") == "auto"
    assert [kwargs["trust_remote_code"] for _, kwargs in recorder.calls] == [False, False]
    assert recorder.calls[0][1].get("use_safetensors") is True


def test_every_loader_defaults_trust_remote_code_to_false_and_never_hardcodes_true():
    """Functions with a ``trust_remote_code`` default default to False; no call passes a literal
    True, and values read from a config default to False."""
    problems = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                positional = args.posonlyargs + args.args
                defaults = dict(
                    zip([a.arg for a in positional[-len(args.defaults) :]], args.defaults)
                )
                defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d}
                value = defaults.get("trust_remote_code")
                if value is not None and not (
                    isinstance(value, ast.Constant) and value.value is False
                ):
                    problems.append(f"{where(path, node)}: {node.name} default is not False")
        for call in calls(tree):
            value = keyword(call, "trust_remote_code")
            if isinstance(value, ast.Constant) and value.value is not False:
                problems.append(f"{where(path, call)}: trust_remote_code={value.value!r}")
            if (
                isinstance(value, ast.Call)
                and dotted(value.func).endswith(".get")
                and value.args
                and isinstance(value.args[0], ast.Constant)
                and value.args[0].value == "trust_remote_code"
            ):
                default = value.args[1] if len(value.args) > 1 else None
                if not (isinstance(default, ast.Constant) and default.value is False):
                    problems.append(f"{where(path, call)}: .get('trust_remote_code') default")
    assert problems == []


def test_rules_pass_trust_remote_code_from_the_model_config_defaulting_to_false():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    model = schema["properties"]["models"]["additionalProperties"]["properties"]
    assert model["trust_remote_code"] == {"type": "boolean", "default": False}
    mentions = []
    for path in SMK_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "trust_remote_code" in line:
                mentions.append(line)
                assert not re.search(r"\bTrue\b", line), (path, line)
                assert "config" in line or "model" in line, (path, line)  # read from the config
    assert mentions, "the rules pass models.<name>.trust_remote_code to the jobs"


def test_every_causal_lm_load_asks_for_safetensors():
    """``from_pretrained`` of a model class passes ``use_safetensors=True`` (GGUF conversion,
    which reads a ``gguf_file``, is the one exception: GGUF holds no pickles)."""
    problems = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in calls(tree):
            name = dotted(call.func)
            if not name.endswith(".from_pretrained") or "Tokenizer" in name or "Config" in name:
                continue
            if keyword(call, "gguf_file") is not None:
                continue
            value = keyword(call, "use_safetensors")
            if not (isinstance(value, ast.Constant) and value.value is True):
                problems.append(f"{where(path, call)}: {name} without use_safetensors=True")
    assert problems == []


def test_a_hub_download_fetches_no_pickles_and_no_code(monkeypatch, tmp_path):
    import huggingface_hub

    from langarith.model.loading import prepare_model

    seen = {}

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, **kwargs):
        seen.update(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns, **kwargs)
        snapshot = tmp_path / "snapshot" / "abc123"
        snapshot.mkdir(parents=True, exist_ok=True)
        return str(snapshot)

    def fake_model_info(self, repo_id, revision=None, **kwargs):  # the file list, no network
        files = ["config.json", "model.safetensors", "pytorch_model.bin", "modeling_custom.py"]
        return types.SimpleNamespace(siblings=[types.SimpleNamespace(rfilename=f) for f in files])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", fake_model_info)
    (tmp_path / "models").mkdir()
    manifest = prepare_model({"kind": "hub", "id": "org/model"}, tmp_path / "models" / "m")
    assert manifest["revision"] == "abc123"
    patterns = seen["allow_patterns"]
    assert patterns, "a hub download must list what it fetches"
    unsafe = [
        "pytorch_model.bin",
        "pytorch_model-00001-of-00002.bin",
        "model.pt",
        "model.pth",
        "model.ckpt",
        "optimizer.pkl",
        "training_args.bin",
        "modeling_custom.py",
        "configuration_custom.py",
        "tokenization_custom.py",
        "model.h5",
        "flax_model.msgpack",
    ]
    fetched = [name for name in unsafe if any(fnmatch.fnmatch(name, p) for p in patterns)]
    assert fetched == []
    assert any(fnmatch.fnmatch("model-00001-of-00004.safetensors", p) for p in patterns)


# --- unpickling ------------------------------------------------------------------------------


def unpickling_problems(path: Path, tree: ast.AST) -> list[str]:
    """Calls of ``tree`` that could unpickle arbitrary objects."""
    problems = []
    for call in calls(tree):
        name = dotted(call.func)
        if name == "torch.load":
            value = keyword(call, "weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                problems.append(f"{where(path, call)}: torch.load without weights_only=True")
        if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load"):
            problems.append(f"{where(path, call)}: {name} unpickles arbitrary objects")
        if name in ("np.load", "numpy.load"):
            value = keyword(call, "allow_pickle")
            if isinstance(value, ast.Constant) and value.value is True:
                problems.append(f"{where(path, call)}: np.load(allow_pickle=True)")
    for node in ast.walk(tree):  # `from torch import load` would hide a call from the scan
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "pickle"):
            if "load" in {a.name for a in node.names}:
                problems.append(f"{where(path, node)}: from {node.module} import load")
    return problems


def snakefile_unpickling_problems(path: Path, text: str) -> list[str]:
    """Lines of a Snakefile that call ``torch.load`` without ``weights_only=True``."""
    return [
        f"{path.name}:{number}: torch.load"
        for number, line in enumerate(text.splitlines(), 1)
        if "torch.load(" in line and "weights_only=True" not in line
    ]


def test_every_torch_load_uses_weights_only():
    problems = []
    for path in python_files():
        problems += unpickling_problems(path, ast.parse(path.read_text(encoding="utf-8")))
    for path in SMK_FILES:
        problems += snakefile_unpickling_problems(path, path.read_text(encoding="utf-8"))
    assert problems == []


def test_the_scan_sees_a_torch_load_without_weights_only():
    tree = ast.parse(
        "import torch, pickle, numpy as np\n"
        "x = torch.load('a.pt')\n"
        "y = torch.load('b.pt', weights_only=True)\n"
        "z = torch.load('c.pt', weights_only=False)\n"
        "w = pickle.loads(b'')\n"
        "v = np.load('d.npy', allow_pickle=True)\n"
        "u = np.load('e.npy')\n"
        "from torch import load\n"
    )
    lines = [int(p.split(":")[1]) for p in unpickling_problems(REPO / "x.py", tree)]
    assert sorted(lines) == [2, 4, 5, 6, 8]
    smk = (
        "rule a:\n    run:\n"
        "        torch.load(input[0])\n"
        "        torch.load(input[1], weights_only=True)\n"
    )
    assert snakefile_unpickling_problems(Path("x.smk"), smk) == ["x.smk:3: torch.load"]


# --- shell strings ---------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^(\s*)(shell|run)\s*:\s*(.*)$")
_INTERPOLATION = re.compile(r"\{(params|config)\b")


def directive_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, directive, body)`` of every ``shell:`` / ``run:`` directive of a Snakefile."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        indent, directive, rest = len(match.group(1)), match.group(2), match.group(3)
        body = [rest]
        for follow in lines[i + 1 :]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            body.append(follow)
        blocks.append((i + 1, directive, "\n".join(body)))
    return blocks


def shell_problems(path: Path, text: str) -> list[str]:
    problems = []
    for line, directive, body in directive_blocks(text):
        if directive == "shell" and _INTERPOLATION.search(body):
            problems.append(f"{path.name}:{line}: shell: interpolates params/config")
        if directive == "run" and re.search(r"\bshell\(", body) and _INTERPOLATION.search(body):
            problems.append(f"{path.name}:{line}: run: passes params/config to shell()")
        if directive == "run" and re.search(r"\bshell\([^)]*\b(params|config)\b", body):
            problems.append(f"{path.name}:{line}: run: passes params/config to shell()")
    return problems


def test_no_rule_interpolates_params_or_config_into_a_shell_command():
    problems = []
    for path in SMK_FILES:
        problems += shell_problems(path, path.read_text(encoding="utf-8"))
    assert problems == []


def test_the_shell_scan_catches_interpolation():
    bad = (
        'rule a:\n    params:\n        x=config["x"],\n    shell:\n        "echo {params.x}"\n'
        'rule b:\n    run:\n        shell("ls " + config["dir"])\n'
        'rule c:\n    shell:\n        "cat {input} > {output}"\n'
    )
    assert [p.split(": ")[0] for p in shell_problems(Path("x.smk"), bad)] == ["x.smk:4", "x.smk:7"]


SUBPROCESS = {"run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"}


def subprocess_problems(path: Path, tree: ast.AST) -> list[str]:
    problems = []
    for call in calls(tree):
        name = dotted(call.func)
        module, _, func = name.rpartition(".")
        if name in ("os.system", "os.popen", "asyncio.create_subprocess_shell"):
            problems.append(f"{where(path, call)}: {name} runs a shell")
        if module != "subprocess" or func not in SUBPROCESS:
            continue
        shell = keyword(call, "shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
            problems.append(f"{where(path, call)}: subprocess.{func}(shell=...)")
        if func in ("getoutput", "getstatusoutput"):
            problems.append(f"{where(path, call)}: subprocess.{func} runs a shell")
            continue
        command = call.args[0] if call.args else keyword(call, "args")
        if not isinstance(command, ast.List | ast.Tuple):
            problems.append(f"{where(path, call)}: subprocess.{func} without an argument list")
    return problems


def test_subprocess_is_called_with_argument_lists_never_a_shell():
    problems = []
    for path in python_files():
        problems += subprocess_problems(path, ast.parse(path.read_text(encoding="utf-8")))
    assert problems == []


def test_the_subprocess_scan_catches_shell_strings():
    tree = ast.parse(
        "import subprocess, os\n"
        "subprocess.run(['npm', 'pack'])\n"
        "subprocess.run('npm pack ' + v, shell=True)\n"
        "subprocess.check_output(f'ls {d}')\n"
        "os.system('rm x')\n"
    )
    lines = sorted(int(p.split(":")[1]) for p in subprocess_problems(REPO / "x.py", tree))
    assert lines == [3, 3, 4, 5]
