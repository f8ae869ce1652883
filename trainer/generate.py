"""Ask a trained model folder (a stage's `final/`, see `trainer.model`) about an image: reloads the tower,
projector, LLM and tokenizer from disk alone and decodes greedily. The demo uses it to prove the last
stage's output reloads. A model folder given as an fsspec URL is fetched once into $DOCFORGE_CACHE
(default ~/.cache/docforge)/.fetched; the image may be a URL too.

    python -m trainer.generate train-out/tiny/stage3/final --image page.png --prompt "Read the text."
    python -m trainer.generate s3://bucket/runs/x/stage3/final --image s3://bucket/pages/p1.png
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from PIL import Image, ImageOps
from transformers.utils import logging as transformers_logging

from mixtures.tasks import IMAGE_PLACEHOLDER
from pipelines.storage import open_url
from trainer.distributed import start_runtime
from trainer.model import DocVLM
from trainer.remote_folders import local_folder
from trainer.tiling import TilingConfig, tile_image
from trainer.tokenizer import load_tokenizer


@torch.no_grad()
def answer(model: DocVLM, tokenizer, image: Image.Image, prompt: str, max_tiles: int = 16,
           max_new_tokens: int = 32) -> str:
    tiled = tile_image(image, TilingConfig(tile_size=model.tile_size, max_tiles=max_tiles))
    turns = [{"role": "user", "content": f"{IMAGE_PLACEHOLDER}\n{prompt}"}]
    text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    at = ids.index(model.image_token_id)
    ids[at:at + 1] = [model.image_token_id] * model.visual_token_count(*tiled.grid)
    input_ids = torch.tensor([ids])
    embeds = model.embed(input_ids, [tiled.grid], tiled.pixels)
    output = model.llm.generate(inputs_embeds=embeds, attention_mask=torch.ones_like(input_ids),
                                max_new_tokens=max_new_tokens, do_sample=False,
                                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(output[0], skip_special_tokens=True)


def open_image(url: str) -> Image.Image:
    """The image at `url` (a path or fsspec URL), decoded and turned upright as its EXIF orientation says,
    as a viewer shows a phone photo."""
    with open_url(url, "rb") as f:
        image = Image.open(f)
        image.load()
    return ImageOps.exif_transpose(image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a trained model folder (a stage's final/), or its fsspec URL")
    parser.add_argument("--image", required=True, help="image file or URL")
    parser.add_argument("--prompt", default="Describe this image.", help="the question (default: %(default)s)")
    parser.add_argument("--max-tiles", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args(argv)
    transformers_logging.disable_progress_bar()
    try:
        cache = os.environ.get("DOCFORGE_CACHE") or Path.home() / ".cache" / "docforge"
        folder = local_folder(args.model, cache, start_runtime("cpu"), "model")
        model = DocVLM.from_pretrained(folder).eval()
        tokenizer = load_tokenizer(str(Path(folder) / "llm"))
        image = open_image(args.image)
    except (OSError, ValueError) as exn:
        print(f"python -m trainer.generate: {exn}", file=sys.stderr)
        return 1
    reply = answer(model, tokenizer, image, args.prompt, args.max_tiles, args.max_new_tokens)
    print(f"{args.model} reloaded; its answer to {args.prompt!r} about {args.image}: {reply!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
