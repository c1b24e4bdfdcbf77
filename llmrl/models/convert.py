"""A GGUF checkpoint -> an ordinary transformers folder (safetensors, config, tokenizer), once per model.

transformers' own GGUF loader reads the file (dequantising to float32); ``save_pretrained`` then refuses the
result ("quantized with gguf and is not serializable"), so the weights move into a plain model built from the
same config, which saves normally. The folder then loads with ``from_pretrained(folder)`` like any local
model, without the GGUF file, gguf or a second dequantisation. Needs the ``gguf`` and ``accelerate`` packages.
"""

from __future__ import annotations

from pathlib import Path


def gguf_to_folder(gguf_path: Path, out_dir: Path) -> None:
    """Write ``gguf_path``'s model and tokenizer into ``out_dir`` (which must exist) as a transformers folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # The GGUF origin stays on the config; a plain folder must not claim to be quantised.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # strict: every weight of the architecture must come from the file (a missing one would stay random).
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    del loaded
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
