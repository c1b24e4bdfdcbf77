"""What a local model folder must hold, checked before a backend hands it to a loader.

transformers' error for a folder without weights talks about tokenizer conversion and sentencepiece, which
sends a user the wrong way; this names what is missing instead.
"""

from __future__ import annotations

from pathlib import Path

# Any one of these holds the weights (the *.index.json files name the shards of a split checkpoint).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def folder_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a loadable transformers model folder (one line), or None when it looks complete."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        return "no such directory"
    if not (path / "config.json").is_file():
        return "no config.json in it (not a transformers model folder)"
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        return f"no model weights in it (none of {', '.join(WEIGHT_FILES)})"
    return None
