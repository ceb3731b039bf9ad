"""Contextual substitution for augmentation: a masked language model re-predicts a few words of a text, and one of
its likely words (not the original) takes each place. It needs a trained masked-LM head: a model without one
(all-MiniLM-L6-v2 ships none) would fill the masks with noise, so that is refused."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.data.assets import resolve_model
from nlp_transfer.data.augment import Operation

TOP_K = 10  # a replacement is drawn from the model's 10 most likely words for the masked place


def contextual_operation(reference: str, base_dir: Path | None) -> Operation:
    asset = resolve_model(reference, base_dir=base_dir)
    try:
        # Held for the run log: a model without the head gets a table of missing keys, which the line below says.
        with quiet_libraries():
            tokenizer = AutoTokenizer.from_pretrained(asset.location)
            model, info = AutoModelForMaskedLM.from_pretrained(
                asset.location, use_safetensors=True, output_loading_info=True
            )
    except (OSError, ValueError) as err:
        raise UserError(
            f"augment.mlm_model: '{reference}' cannot be loaded as a masked language model ({err}); name one that "
            "has a masked-LM head (BERT, RoBERTa, DistilBERT style)"
        ) from err
    head = [key for key in info.get("missing_keys", []) if not key.startswith(model.base_model_prefix + ".")]
    if head or tokenizer.mask_token is None:
        raise UserError(
            f"augment.mlm_model: '{reference}' has no trained masked-LM head ({(head or ['no mask token'])[0]} "
            "would start random), so contextual substitution would insert noise; set augment.mlm_model to a model "
            "with one, or drop contextual from augment.operations"
        )
    model.eval()

    @torch.inference_mode()
    def contextual(words: list[str], n: int, rng: random.Random) -> list[str]:
        places = [i for i, w in enumerate(words) if w.isalpha()]
        if not places:
            return words
        chosen = sorted(rng.sample(places, min(n, len(places))))
        masked = [tokenizer.mask_token if i in chosen else w for i, w in enumerate(words)]
        inputs = tokenizer(" ".join(masked), return_tensors="pt", truncation=True, max_length=256)
        logits = model(**inputs).logits[0]  # (T, V)
        positions = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
        result = list(words)
        for i, position in zip(chosen, positions, strict=False):
            candidates = [str(tokenizer.decode([t])).strip() for t in logits[position].topk(TOP_K * 2).indices.tolist()]
            usable = [c for c in candidates if c.isalpha() and c.lower() != words[i].lower()][:TOP_K]
            if usable:
                result[i] = rng.choice(usable)
        return result

    return contextual
