"""`docforge mix check` / `mix preview` on real shards, with a real (tiny, locally trained) tokenizer."""

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from pipelines.cli import main
from tests.test_mixtures import MIX, make_dataset, write_manifest


def tiny_tokenizer(path: Path) -> str:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<image>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["caption of alpha beta gamma", "Describe this image briefly."] * 50, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>").save_pretrained(str(path))
    return str(path)


def datasets(root: Path) -> Path:
    make_dataset(root, "alpha", 8, 25)
    make_dataset(root, "beta", 3, 40)
    make_dataset(root, "gamma", 5, 10)
    return write_manifest(root, MIX.format(repeat="true"))


def test_check_reports_counts_shares_epochs_and_tokens(tmp_path, capsys):
    manifest = datasets(tmp_path)
    assert main(["mix", "check", str(manifest), "--samples", "1000", "--tokenizer", tiny_tokenizer(tmp_path / "tok")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    assert rows["alpha"][1:5] == ["8", "200", "50.0%", "2.50"]   # shards, samples, share, epochs
    assert rows["gamma"][1:5] == ["5", "50", "20.0%", "4.00"]     # brace pattern: counted by reading the tars
    assert int(rows["beta"][5]) > 3 and rows["beta"][6] != "-"   # tokens per sample and in all


def test_check_fails_on_a_bad_manifest_naming_file_and_line(tmp_path, capsys):
    manifest = datasets(tmp_path)
    manifest.write_text(manifest.read_text().replace("weight: 3", "weight: -1"))
    assert main(["mix", "check", str(manifest)]) == 1
    assert f"{manifest}:12: sources[1].weight" in capsys.readouterr().err.replace("\n", "")


def test_check_fails_on_an_unreadable_shard(tmp_path, capsys):
    manifest = datasets(tmp_path)
    (tmp_path / "gamma" / "shard-000001-00.tar").write_bytes(b"not a tar at all" * 40)
    assert main(["mix", "check", str(manifest)]) == 1
    assert "shard-000001-00.tar: unreadable" in capsys.readouterr().out.replace("\n", "")


def test_preview_writes_the_conversations_with_images(tmp_path):
    manifest = datasets(tmp_path)
    out = tmp_path / "preview.html"
    assert main(["mix", "preview", str(manifest), "-n", "10", "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count('class="sample"') == 10 and page.count("data:image/jpeg;base64,") == 10
    assert "caption of " in page and "test-mix" in page
