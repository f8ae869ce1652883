"""A vision tower whose model code ships in its folder (`auto_map`, as InternViT-300M's does), run with the
recipe's `model.vision.trust_remote_code`: built, trained, saved with its code and reloaded. The folder
here holds a small real ViT written as such a folder is (configuration and modeling files beside
config.json and the weights)."""

import json

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModel

from tests.test_trainer_model import LLM, encoder, sample
from tests.trainer_runs import demo_out, env, steps_of, tiny_variant  # noqa: F401 (fixtures)
from trainer.data import pack_rows
from trainer.model import DocVLM, ModelConfig, build_model
from trainer.recipe import RecipeError, load_recipe
from trainer.tokenizer import train_bpe_tokenizer
from trainer.train import run_recipe

CONFIGURATION = '''
from transformers import PretrainedConfig


class PatchViTConfig(PretrainedConfig):
    model_type = "patch_vit_docforge_test"

    def __init__(self, image_size=112, patch_size=14, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                 num_attention_heads=2, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.patch_size, self.hidden_size = image_size, patch_size, hidden_size
        self.intermediate_size, self.num_hidden_layers = intermediate_size, num_hidden_layers
        self.num_attention_heads = num_attention_heads
'''

MODELING = '''
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .configuration_patch_vit import PatchViTConfig


class PatchViTLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(config.hidden_size), nn.LayerNorm(config.hidden_size)
        self.attention = nn.MultiheadAttention(config.hidden_size, config.num_attention_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(config.hidden_size, config.intermediate_size), nn.GELU(),
                                 nn.Linear(config.intermediate_size, config.hidden_size))

    def forward(self, hidden):
        normed = self.norm1(hidden)
        hidden = hidden + self.attention(normed, normed, normed, need_weights=False)[0]
        return (hidden + self.mlp(self.norm2(hidden)),)


class PatchViTEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList(PatchViTLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden, output_hidden_states=False):
        states = [hidden]
        for layer in self.layers:
            hidden = layer(hidden)[0]
            states.append(hidden)
        return BaseModelOutputWithPooling(last_hidden_state=hidden,
                                          hidden_states=tuple(states) if output_hidden_states else None)


class PatchViTModel(PreTrainedModel):
    config_class = PatchViTConfig
    base_model_prefix = "patch_vit"
    main_input_name = "pixel_values"
    _no_split_modules = ["PatchViTLayer"]

    def __init__(self, config):
        super().__init__(config)
        self.patch_embedding = nn.Conv2d(3, config.hidden_size, config.patch_size, config.patch_size)
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.encoder = PatchViTEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size)
        self.post_init()

    def forward(self, pixel_values, output_hidden_states=False, return_dict=True):
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        hidden = torch.cat([self.class_embedding.expand(len(patches), -1, -1), patches], dim=1)
        out = self.encoder(hidden, output_hidden_states=output_hidden_states)
        return BaseModelOutputWithPooling(last_hidden_state=self.post_layernorm(out.last_hidden_state),
                                          pooler_output=out.last_hidden_state[:, 0], hidden_states=out.hidden_states)
'''


@pytest.fixture(scope="module")
def tower_folder(tmp_path_factory):
    """A folder as `huggingface-cli download` leaves a remote-code tower: code files, config.json with
    auto_map, weights."""
    folder = tmp_path_factory.mktemp("patch-vit")
    (folder / "configuration_patch_vit.py").write_text(CONFIGURATION)
    (folder / "modeling_patch_vit.py").write_text(MODELING)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "patch_vit_docforge_test", "architectures": ["PatchViTModel"],
        "auto_map": {"AutoConfig": "configuration_patch_vit.PatchViTConfig",
                     "AutoModel": "modeling_patch_vit.PatchViTModel"},
        "image_size": 112, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
        "num_attention_heads": 2}))
    config = AutoConfig.from_pretrained(str(folder), trust_remote_code=True)
    torch.manual_seed(3)
    AutoModel.from_config(config, trust_remote_code=True).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(["synth/corpora/en.txt"], 600)


def test_a_remote_code_tower_trains_saves_its_code_and_reloads_with_the_same_outputs(tower_folder, tokenizer, tmp_path):
    spec = {"path": str(tower_folder), "trust_remote_code": True}
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec, {"config": LLM}, attention="sdpa"), tokenizer)
    assert type(model.vision).__name__ == "PatchViTModel"
    assert model.tower_stack == "encoder.layers" and model.blocks_read == 2  # feature layer -2 of 3 blocks
    stored = AutoModel.from_pretrained(str(tower_folder), trust_remote_code=True)
    torch.testing.assert_close(model.vision.patch_embedding.weight, stored.patch_embedding.weight, atol=0, rtol=0)

    enc = encoder(tokenizer, model, seq_len=400)
    batch = pack_rows([[enc.encode(sample("r1", (300, 120), "first")), enc.encode(sample("r2", (60, 60), "two"))]],
                      400, tokenizer.pad_token_id)
    out = model(**batch.model_inputs())
    out["loss_sum"].backward()
    assert model.vision.encoder.layers[1].mlp[0].weight.grad.abs().sum() > 0  # the blocks read are trained
    assert model.vision.encoder.layers[2].mlp[0].weight.grad is None  # the block above the feature layer never runs

    model.save_pretrained(tmp_path / "saved", tokenizer)
    assert (tmp_path / "saved" / "vision" / "modeling_patch_vit.py").is_file()
    reloaded = DocVLM.from_pretrained(tmp_path / "saved").eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch.model_inputs())["loss_sum"], model(**batch.model_inputs())["loss_sum"])


def test_a_remote_code_tower_is_refused_without_trust_and_trust_needs_a_folder(tower_folder, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="trust_remote_code"):
        build_model(ModelConfig({"path": str(tower_folder)}, {"config": LLM}), tokenizer)
    recipe = {"name": "r", "output": str(tmp_path / "out"), "tokenizer": {"train": {"files": ["x.txt"],
                                                                                      "vocab_size": 400}},
              "model": {"vision": {"config": {"model_type": "clip_vision_model"}, "trust_remote_code": True},
                        "llm": {"config": LLM}},
              "stages": [{"stage": 1, "mixture": "m.yaml", "trainable": ["projector"], "lr": {"projector": 1e-3},
                          "steps": 1, "micro_batch": 1, "grad_accum": 1, "seq_len": 256, "max_tiles": 1}]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="model.vision.*trust_remote_code runs the code of a model folder"):
        load_recipe(str(path))
    recipe["model"]["llm"]["trust_remote_code"] = True
    recipe["model"]["vision"] = {"path": "tower"}
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="model.llm.trust_remote_code"):
        load_recipe(str(path))


def test_a_recipe_trains_through_stages_on_a_remote_code_tower(env, tower_folder):
    """Stage 1 builds the tower from the folder's code; stage 2 starts from stage 1's saved model folder."""
    path = tiny_variant(env, "remote-tower", steps=1, stages=(1, 2))
    recipe = yaml.safe_load(path.read_text())
    recipe["model"]["vision"] = {"path": str(tower_folder), "trust_remote_code": True}
    path.write_text(yaml.safe_dump(recipe))
    finals = run_recipe(str(path), "all")
    assert [f.parent.name for f in finals] == ["stage1", "stage2"]
    assert all(len(steps_of(f.parent)) == 1 for f in finals)
    assert type(DocVLM.from_pretrained(finals[1]).vision).__name__ == "PatchViTModel"
