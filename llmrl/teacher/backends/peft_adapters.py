"""Hot-switching LoRA versions on a frozen transformers model with peft: the part the ``hf`` teacher backend
and the analyst LM (``llmrl.adapter.analyst``) share.

The switch itself must run on the thread that runs the model's forward passes, between two of them (both
callers run it through their ``merging.CallMerger``), so no forward pass ever sees half an adapter. Reading
and checking a version's files (``check_adapter_files``) is the slow part and runs anywhere before it.
"""

from __future__ import annotations

import os
from typing import Any

from llmrl.teacher.backends import BackendError, one_line


def check_adapter_files(folder: str) -> None:
    """Raise if a peft adapter folder cannot be read (missing config, unreadable or empty weights)."""
    from safetensors.torch import load_file

    path = os.path.join(folder, "adapter_model.safetensors")
    try:
        if not os.path.isfile(os.path.join(folder, "adapter_config.json")):
            raise FileNotFoundError("no adapter_config.json")
        if not load_file(path):
            raise ValueError("no tensors in adapter_model.safetensors")
    except Exception as e:  # noqa: BLE001 - one line for the service's counted refusal
        raise BackendError(f"adapter folder '{folder}' is not loadable: {one_line(e)}") from None


def model_base_hash(model: Any) -> str:
    """The config hash an adapter must have been trained on to load onto ``model``."""
    from llmrl.adapter.versions import config_hash

    return config_hash(model.config.to_dict())


class PeftAdapters:
    """The one LoRA adapter a model serves. The first ``switch`` wraps the model in place (its layers gain the
    LoRA branch, so the caller's forward code is unchanged); later ones load the new version next to the
    active one, activate it and delete the previous one. A version that fails to load leaves the previous one
    active."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._peft: Any = None  # peft.PeftModel around the model once an adapter is loaded

    def switch(self, name: str, path: str) -> str:
        from peft import PeftModel

        try:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self._model, path, adapter_name=name)
            else:
                self._peft.load_adapter(path, adapter_name=name)
            self._peft.set_adapter(name)
        except Exception as e:  # noqa: BLE001 - a broken adapter must not take the model down
            if self._peft is not None and name in self._peft.peft_config and name != self._peft.active_adapter:
                self._peft.delete_adapter(name)
            raise BackendError(f"adapter {name} ({path}) did not load: {one_line(e)}") from None
        for old in [n for n in self._peft.peft_config if n != name]:
            self._peft.delete_adapter(old)
        self._model.requires_grad_(False)
        self._model.eval()
        return name
