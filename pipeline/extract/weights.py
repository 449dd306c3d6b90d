"""Find model weights before loading them, so that a missing weight is one clear message.

Three families of weights feed extract: Hugging Face depth models (Hub id or local folder),
ultralytics YOLO files (``yolo11n.pt``) and segment-anything checkpoints (``vit_b`` or a path).
They are found the way their own libraries find them: a Hub id in the Hugging Face cache (else
downloaded by ``from_pretrained``), an official YOLO name in ultralytics' ``weights_dir`` (else
downloaded there by ultralytics), a SAM size in torch's hub cache (else downloaded there from its
official URL). A download needs the network and no offline switch; without either, a missing weight
is ``MissingWeightsError`` at once, naming the weight and the command or URL to fetch it. "No
network" is found by one short connection attempt per host (``PROBE_TIMEOUT``), not by the
libraries' own retries, which take minutes.
"""
from __future__ import annotations

import functools
import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from pipeline.errors import DepthgaitError

SAM_CHECKPOINTS = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/{file}"
# Encoder width of each SAM size: tells the size of a checkpoint whose file name does not.
SAM_EMBED_DIMS = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
YOLO_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0/{file}"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_TIMEOUT = 2.0  # seconds for one connection attempt (DNS included) before "no network"
# The libraries' own offline switches, and depthgait's one for all (SAM has none of its own).
HF_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DEPTHGAIT_OFFLINE")
YOLO_OFFLINE_VARS = ("YOLO_OFFLINE", "DEPTHGAIT_OFFLINE")
SAM_OFFLINE_VARS = ("DEPTHGAIT_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE")


class MissingWeightsError(DepthgaitError, ValueError):
    """A model weight is not where it was looked for; the message says how to get it."""


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def offline_switch(names: tuple[str, ...]) -> str | None:
    """The first of ``names`` set to a true value (``HF_HUB_OFFLINE=1``), or None."""
    return next((name for name in names if _env_true(name)), None)


def _proxy_for(host: str) -> tuple[str, int] | None:
    """The HTTPS proxy the libraries would go through for ``host`` (``HTTPS_PROXY``), unless ``NO_PROXY`` names it."""
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    if any(part.strip() and host.endswith(part.strip().lstrip(".")) for part in no_proxy.split(",")):
        return None
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY")
    if not proxy:
        return None
    parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    return (parsed.hostname, parsed.port or 3128) if parsed.hostname else None


@functools.cache
def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether one TCP connection to ``host`` (or its proxy) opens within ``timeout`` seconds, DNS included.

    Remembered per process (``host_reachable.cache_clear()`` forgets). The attempt runs in a daemon
    thread because name resolution has no timeout of its own.
    """
    target = _proxy_for(host) or (host, port)
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection(target, timeout=timeout).close()
            result.append(True)
        except (OSError, ValueError):  # ValueError: a malformed proxy address
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True, name=f"probe-{host}")
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"


def why_no_download(switches: tuple[str, ...], host: str) -> str | None:
    """Why nothing can be downloaded from ``host`` now ("YOLO_OFFLINE=1", "github.com cannot be reached"), or None."""
    switch = offline_switch(switches)
    if switch:
        return f"{switch}={os.environ[switch]}"
    if not host_reachable(host):
        return f"{host} cannot be reached (no network?)"
    return None


def weights_dirs() -> list[Path]:
    """Folders searched for weight files given by name: ``$DEPTHGAIT_WEIGHTS``, ./weights, ~/.cache/depthgait."""
    dirs = [Path(p) for p in os.environ.get("DEPTHGAIT_WEIGHTS", "").split(os.pathsep) if p]
    return dirs + [Path("weights"), Path.home() / ".cache" / "depthgait"]


def _find_file(name: str, extra: list[Path]) -> Path | None:
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.parent != Path("."):
        return None  # a path with folders is taken literally
    for folder in [*weights_dirs(), *extra]:
        if (folder / name).is_file():
            return folder / name
    return None


# ---- Hugging Face depth models -------------------------------------------------------------------


def hf_download_hint(hub_id: str) -> str:
    return (
        f"on a machine with internet run `hf download {hub_id}` (into ~/.cache/huggingface/hub: copy it here "
        f"or set HF_HOME), or `hf download {hub_id} --local-dir models/depth` and pass --depth models/depth"
    )


def resolve_hf_model(name_or_dir: str) -> str:
    """Return a local folder or a Hub id that ``from_pretrained`` can load without waiting on a network.

    A local folder must hold ``config.json``. A name of a model shipped with depthgait
    (``pipeline.depth.shipped``) is its folder. A Hub id is accepted when it is in the Hugging Face
    cache, or when it can be downloaded (no offline switch, the Hub reachable); otherwise it is an error.
    """
    from pipeline.depth.shipped import resolve_shipped

    try:
        shipped = resolve_shipped(name_or_dir)
    except FileNotFoundError as exc:
        raise MissingWeightsError(str(exc)) from exc
    if shipped is not None:
        return str(shipped)
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MissingWeightsError(
                f"depth model folder {path} has no config.json: save one with "
                "model.save_pretrained(folder) and processor.save_pretrained(folder), or "
                f"`hf download <hub-id> --local-dir {path}` on a machine with internet"
            )
        return str(path)
    if not _HUB_ID.match(name_or_dir) or path.is_absolute() or name_or_dir.startswith("."):
        raise MissingWeightsError(f"depth model {name_or_dir!r}: no such folder, and not a Hub id (owner/name)")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name_or_dir, "config.json")
    if isinstance(cached, str):
        return name_or_dir
    why = why_no_download(HF_OFFLINE_VARS, hub_host())
    if why:
        raise MissingWeightsError(
            f"depth model {name_or_dir!r} is not in the Hugging Face cache and {why}: {hf_download_hint(name_or_dir)}"
        )
    return name_or_dir  # from_pretrained downloads it into the Hugging Face cache


# ---- ultralytics YOLO ------------------------------------------------------------------------------


def _ultralytics_weights_dir() -> Path | None:
    # ultralytics logs (to stdout) a first-run banner and each download: depthgait keeps its console to its own lines.
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics.utils import SETTINGS

        return Path(SETTINGS["weights_dir"])
    except Exception:  # noqa: BLE001 - a broken settings file must not hide the real message
        return None


def _official_yolo(name: str) -> bool:
    """Whether ultralytics can download ``name`` from its release assets."""
    try:
        from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES
    except Exception:  # noqa: BLE001 - an ultralytics without the list: assume the usual names
        return re.fullmatch(r"yolo(v8|11|12|26)[nsmlx](-seg|-cls|-pose|-obb)?\.pt", name) is not None
    return name in GITHUB_ASSETS_NAMES


def _download_yolo(name: str, folder: Path) -> str:
    """ultralytics' own download of an official asset into ``folder`` (its ``weights_dir``)."""
    from ultralytics.utils.downloads import attempt_download_asset

    folder.mkdir(parents=True, exist_ok=True)
    try:
        got = Path(attempt_download_asset(folder / name))
    except Exception as exc:  # noqa: BLE001 - any download failure is "missing", with its reason
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MissingWeightsError(
            f"YOLO weights {name!r}: download failed ({reason}); fetch {YOLO_URL.format(file=name)} by hand into {folder}"
        ) from exc
    if not got.is_file():
        raise MissingWeightsError(f"YOLO weights {name!r}: download failed; fetch {YOLO_URL.format(file=name)} into {folder}")
    return str(got)


def resolve_yolo_weights(name_or_path: str) -> str:
    """Return a YOLO weight file, or a model yaml (``yolo11n.yaml``: random weights, for tests).

    Looks at the path itself, the depthgait weight folders and ultralytics' ``weights_dir``. An
    official name found nowhere is downloaded by ultralytics into its ``weights_dir`` when it may
    (no ``YOLO_OFFLINE``, github.com reachable).
    """
    if name_or_path.endswith((".yaml", ".yml")):
        return name_or_path
    ul_dir = _ultralytics_weights_dir()
    found = _find_file(name_or_path, [ul_dir] if ul_dir else [])
    if found is not None:
        return str(found)
    name = Path(name_or_path).name
    where = ", ".join(str(d) for d in [*weights_dirs(), *([ul_dir] if ul_dir else [])])
    fetch = (f"On a machine with internet: `yolo predict model={name}` or download {YOLO_URL.format(file=name)}, "
             "then put the file in one of those folders or pass its path (--detector-weights / --seg-weights)")
    if Path(name_or_path).parent != Path(".") or not _official_yolo(name):
        raise MissingWeightsError(f"YOLO weights {name_or_path!r} not found (looked in: {where}). {fetch}")
    why = why_no_download(YOLO_OFFLINE_VARS, "github.com")
    if why or ul_dir is None:
        why = why or "ultralytics has no weights_dir"
        raise MissingWeightsError(f"YOLO weights {name_or_path!r} not found (looked in: {where}) and {why}. {fetch}")
    return _download_yolo(name, ul_dir)


# ---- segment-anything ------------------------------------------------------------------------------


def _torch_hub_checkpoints() -> Path | None:
    try:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # noqa: BLE001
        return None


def sam_type_from_name(path: str | Path) -> str | None:
    """``vit_b``/``vit_l``/``vit_h`` when the file name says it (the official names do)."""
    match = re.search(r"vit_([blh])", Path(path).name)
    return f"vit_{match.group(1)}" if match else None


def _download_sam(file: str, folder: Path) -> Path:
    """The official checkpoint into torch's hub cache (``torch.hub.download_url_to_file``: a temp file, then a rename)."""
    import torch

    url, target = SAM_URL.format(file=file), folder / file
    folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except Exception as exc:  # noqa: BLE001 - any download failure is "missing", with its reason
        raise MissingWeightsError(f"SAM checkpoint {file}: download of {url} failed ({exc}); fetch it by hand into {folder}") from exc
    return target


def resolve_sam_checkpoint(name_or_path: str) -> tuple[str | None, Path]:
    """Return ``(model type or None when the name does not say, checkpoint path)``.

    A size name (``vit_b``) found nowhere is downloaded from its official URL into torch's hub cache
    when it may be (no offline switch, the URL's host reachable); a path is taken as given.
    """
    if name_or_path in SAM_CHECKPOINTS:
        file = SAM_CHECKPOINTS[name_or_path]
        hub = _torch_hub_checkpoints()
        found = _find_file(file, [hub] if hub else [])
        if found is not None:
            return name_or_path, found
        url = SAM_URL.format(file=file)
        why = why_no_download(SAM_OFFLINE_VARS, urlparse(url).hostname or "")
        if why or hub is None:
            why = why or "torch has no hub folder"
            where = ", ".join(str(d) for d in [*weights_dirs(), *([hub] if hub else [])])
            raise MissingWeightsError(
                f"SAM checkpoint {file} ({name_or_path}) not found (looked in: {where}) and {why}. On a machine with "
                f"internet download {url} and put it in one of those folders, or pass --sam PATH"
            )
        return name_or_path, _download_sam(file, hub)
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        names = ", ".join(SAM_CHECKPOINTS)
        raise MissingWeightsError(
            f"SAM checkpoint {name_or_path!r} not found: give {names} or a .pth path "
            f"(official files: {SAM_URL.format(file=SAM_CHECKPOINTS['vit_b'])} and the vit_l/vit_h ones)"
        )
    return sam_type_from_name(path), path
