"""The shipped mixture manifests: mixtures/inf-mllm2/stage{1,2,3}.yaml (the INF-MLLM2 recipe) and
mixtures/demo/stage{1,2,3}.yaml (the same stages over the shards `make demo` writes)."""

import os
import re
import shutil
import subprocess
from itertools import islice
from pathlib import Path

import pytest
import yaml

from mixtures.manifest import ManifestError, load_manifest

REPO = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO / "mixtures" / "inf-mllm2"
DEMO_DIR = REPO / "mixtures" / "demo"
RECIPE = sorted(RECIPE_DIR.glob("*.yaml"))
DEMO = sorted(DEMO_DIR.glob("*.yaml"))
ROOTS = ("${DATA_ROOT}/", "${DOCFORGE_SHARDS}/")

# Every dataset of the report's Table 1 -> (stage, source name).
DATASETS = {
    "CC3M": (1, "cc3m"),
    "CC12M": (1, "cc12m"),
    "LAION-115M": (1, "laion-115m"),
    "CapsFusion-120M": (1, "capsfusion-120m"),
    "ShareGPT4V-1M": (2, "sharegpt4v-1m"),
    "LLaVA-ReCap-3M": (2, "llava-recap-3m"),
    "ALLaVA-4V (captions)": (2, "allava-caption-4v"),
    "Doc2md-2M arXiv": (2, "doc2md-2m-arxiv-en"),
    "Chinese-Doc2md-600k": (2, "doc2md-600k-zh"),
    "synthdog-en": (2, "synthdog-en"),
    "synthdog-ch": (2, "synthdog-zh"),
    "AnyText-3M": (2, "anytext-3m"),
    "DocOwl-1.5 (DocStruct4M)": (2, "docowl15-docstruct4m"),
    "LLaVA-665k": (3, "llava-665k"),
    "ShareGPT4V-100k": (3, "sharegpt4v-100k"),
    "LVIS-Instruct4V": (3, "lvis-instruct4v"),
    "ALLaVA-Instruction": (3, "allava-instruct-4v"),
    "Cambrian-7M subset": (3, "cambrian-7m-subset"),
    "OCR": (3, "ocr-en"),
    "text grounding": (3, "text-grounding"),
    "OCR-VQA": (3, "ocr-vqa"),
    "DocVQA": (3, "docvqa"),
    "ChartQA": (3, "chartqa"),
    "InfoVQA": (3, "infovqa"),
    "TextVQA": (3, "textvqa"),
    "DocQA-GPT4V": (3, "docqa-gpt4v"),
    "Doc2md-334k": (3, "doc2md-334k-en"),
    "im2latex-100k": (3, "im2latex-100k"),
    "PubTabNet": (3, "pubtabnet"),
    "Doc2md-110k-chn": (3, "doc2md-110k-zh"),
    "MMTab": (3, "mmtab"),
    "CDLA": (3, "cdla"),
    "FUNSD": (3, "funsd"),
    "XFUND": (3, "xfund"),
    "SROIE": (3, "sroie"),
    "WildReceipt": (3, "wildreceipt"),
    "DocLayNet": (3, "doclaynet"),
    "CROHME": (3, "crohme"),
}
CHINESE = {"doc2md-600k-zh", "synthdog-zh", "ocr-zh", "doc2md-110k-zh", "cdla", "xfund"}
TASK_OF = {  # the template each kind of set must use (a list: the weighted task names)
    **dict.fromkeys(["cc3m", "cc12m", "laion-115m", "capsfusion-120m"], ["caption"]),
    **dict.fromkeys(["llava-665k", "sharegpt4v-100k", "lvis-instruct4v", "allava-instruct-4v", "cambrian-7m-subset",
                     "docqa-gpt4v", "docowl15-docstruct4m"], ["conversation"]),
    # caption sets shipped as LLaVA conversations (family conversation, their own description prompts)
    **dict.fromkeys(["sharegpt4v-1m", "llava-recap-3m", "allava-caption-4v"], ["conversation"]),
    **dict.fromkeys(["doc2md-2m-arxiv-en", "doc2md-600k-zh", "doc2md-334k-en", "doc2md-110k-zh"], ["doc2md"]),
    **dict.fromkeys(["synthdog-en", "synthdog-zh"], ["ocr", "positional"]),
    **dict.fromkeys(["ocr-en", "ocr-zh", "anytext-3m"], ["ocr"]),
    "text-grounding": ["positional"],
    **dict.fromkeys(["docvqa", "chartqa", "infovqa", "textvqa", "ocr-vqa"], ["vqa"]),
    **dict.fromkeys(["pubtabnet", "mmtab"], ["table"]),
    **dict.fromkeys(["im2latex-100k", "crohme"], ["formula"]),
    **dict.fromkeys(["doclaynet", "cdla"], ["layout"]),
    **dict.fromkeys(["funsd", "xfund", "sroie", "wildreceipt"], ["kie"]),
}


@pytest.fixture
def recipe_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("DOCFORGE_SHARDS", str(tmp_path / "docforge"))
    monkeypatch.delenv("DOCFORGE_DEMO_OUT", raising=False)
    return tmp_path


def stage_of(path: Path) -> int:
    match = re.fullmatch(r"stage([123])\.yaml", path.name)
    assert match, f"{path}: shipped manifests are named stage1.yaml, stage2.yaml, stage3.yaml"
    return int(match.group(1))


def raw_sources(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["sources"]


def test_both_sets_ship_three_stages():
    assert [p.name for p in RECIPE] == ["stage1.yaml", "stage2.yaml", "stage3.yaml"]
    assert [p.name for p in DEMO] == ["stage1.yaml", "stage2.yaml", "stage3.yaml"]


@pytest.mark.parametrize("path", RECIPE + DEMO, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_parses_and_names_its_stage(recipe_env, path):
    mixture = load_manifest(str(path), resolve=False)
    stage = stage_of(path)
    assert mixture.stage == stage
    assert mixture.name == f"{path.parent.name}-stage{stage}"
    assert yaml.safe_load(path.read_text()).get("description"), f"{path} has no description"
    assert mixture.sources and all(s.weight > 0 and s.shards == () for s in mixture.sources)
    for source in mixture.sources:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", source.name), f"{source.name}: lowercase-with-dashes"


def test_recipe_names_every_dataset_of_the_report(recipe_env):
    by_stage = {stage_of(p): {s.name: s for s in load_manifest(str(p), resolve=False).sources} for p in RECIPE}
    missing = {dataset: where for dataset, where in DATASETS.items() if where[1] not in by_stage[where[0]]}
    assert not missing, f"datasets with no source in their stage: {missing}"
    # and nothing else sneaks in unlisted, except the second half of the bilingual OCR set
    listed = {name for _, name in DATASETS.values()} | {"ocr-zh"}
    extra = {name for sources in by_stage.values() for name in sources} - listed
    assert not extra, f"sources not in the report's list: {extra}"


def test_recipe_tasks_and_languages(recipe_env):
    for path in RECIPE:
        for source in load_manifest(str(path), resolve=False).sources:
            assert [task for task, _ in source.tasks] == TASK_OF[source.name], f"{path.name}: {source.name}"
            if source.name in CHINESE:
                assert source.lang == "zh", f"{path.name}: {source.name}"
            else:  # English, or unset: each sample's record lang (mixed-language sets)
                assert source.lang in ("en", None), f"{path.name}: {source.name}"


def test_recipe_weights_follow_dataset_sizes(recipe_env):
    stage1 = load_manifest(str(RECIPE_DIR / "stage1.yaml"), resolve=False).weight_shares()
    assert stage1["capsfusion-120m"] > stage1["laion-115m"] > stage1["cc12m"] > stage1["cc3m"]
    stage3 = load_manifest(str(RECIPE_DIR / "stage3.yaml"), resolve=False).weight_shares()
    assert stage3["llava-665k"] > stage3["docvqa"] > stage3["funsd"]
    for path in RECIPE:  # every weight carries its dataset size as a comment
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s+weight:", line) and not re.search(r"#.*\d", line):
                pytest.fail(f"{path.name}:{number}: weight without a size comment: {line.strip()}")


def test_recipe_shards_live_under_the_two_roots():
    for path in RECIPE:
        for source in raw_sources(path):
            assert isinstance(source["shards"], str) and source["shards"].startswith(ROOTS), \
                f"{path.name}: {source['name']}: {source['shards']}"


@pytest.mark.parametrize("variable", ["DATA_ROOT", "DOCFORGE_SHARDS"])
def test_recipe_needs_both_roots(recipe_env, monkeypatch, variable):
    monkeypatch.delenv(variable)
    with pytest.raises(ManifestError, match=variable):
        load_manifest(str(RECIPE_DIR / "stage3.yaml"), resolve=False)


def test_recipe_resolves_once_the_data_is_in_place(recipe_env):
    """With a (fake, one-shard) dataset folder at every path, every stage resolves: each source reaches
    its own folder and no two sources share shards."""
    for path in RECIPE:
        expected = {}
        for source in raw_sources(path):
            folder = Path(source["shards"].replace("${DATA_ROOT}", os.environ["DATA_ROOT"])
                          .replace("${DOCFORGE_SHARDS}", os.environ["DOCFORGE_SHARDS"]))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "shard-000000.tar").write_bytes(b"")
            expected[source["name"]] = (folder / "shard-000000.tar").as_posix()
        mixture = load_manifest(str(path))
        for source in mixture.sources:
            assert [ref.url.removeprefix("file://") for ref in source.shards] == [expected[source.name]]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """`make demo`'s shards, built once for this module by the real demo script (~1.5 min, embedded Ray)."""
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(["bash", "samples/run-demo.sh", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, f"run-demo.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return out


def check_demo_mixture(mixture, demo: Path):
    assert mixture.sources
    for source in mixture.sources:
        assert source.shards, f"{mixture.path}: {source.name} has no shards"
        assert all(ref.url.removeprefix("file://").startswith(demo.as_posix() + "/") for ref in source.shards)
        assert source.known_samples and source.known_samples > 0, f"{source.name}: sample count unknown"


@pytest.mark.parametrize("path", DEMO, ids=lambda p: p.name)
def test_demo_resolves_against_demo_shards(demo_out, monkeypatch, path):
    monkeypatch.setenv("DOCFORGE_DEMO_OUT", str(demo_out))
    check_demo_mixture(load_manifest(str(path)), demo_out)


@pytest.mark.parametrize("path", DEMO, ids=lambda p: p.name)
def test_demo_default_path_is_the_repository_demo_out(demo_out, monkeypatch, tmp_path, path):
    """Unset, DOCFORGE_DEMO_OUT defaults to ../../demo-out from the manifest's folder: copy the manifest
    into the same layout (ROOT/mixtures/demo/ beside ROOT/demo-out) and resolve it there."""
    monkeypatch.delenv("DOCFORGE_DEMO_OUT", raising=False)
    (tmp_path / "mixtures" / "demo").mkdir(parents=True)
    copy = tmp_path / "mixtures" / "demo" / path.name
    shutil.copy(path, copy)
    (tmp_path / "demo-out").symlink_to(demo_out, target_is_directory=True)
    check_demo_mixture(load_manifest(str(copy)), tmp_path / "demo-out")


@pytest.mark.parametrize("path", DEMO, ids=lambda p: p.name)
def test_demo_streams_every_source_without_template_errors(demo_out, monkeypatch, path):
    from mixtures.stream import MixtureStream, Slot

    monkeypatch.setenv("DOCFORGE_DEMO_OUT", str(demo_out))
    mixture = load_manifest(str(path))
    stream = MixtureStream(mixture, Slot(), buffer_size=4)
    samples = list(islice(stream, 60))
    assert len(samples) == 60
    assert {s["source"] for s in samples} == {s.name for s in mixture.sources}
    assert all(s["conversation"] for s in samples)
    assert not any(stream.template_errors.values()), dict(stream.template_errors)


@pytest.mark.parametrize("path", DEMO, ids=lambda p: p.name)
def test_demo_passes_mix_check(demo_out, monkeypatch, path, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("DOCFORGE_DEMO_OUT", str(demo_out))
    assert main(["mix", "check", str(path), "--samples", "100"]) == 0
    assert f"{path}: OK" in capsys.readouterr().out


def test_demo_doc2md_keeps_the_pages_of_every_bundled_paper(demo_out):
    """`make demo` converts every paper in samples/papers (en, two-column, zh with xeCJK and ctex, the ones
    needing LaTeXML bindings): no paper fails, and at least 90 % of all pages are kept."""
    import json

    stats = json.loads((demo_out / "doc2md" / "stats.json").read_text())
    errors = [json.loads(line) for line in (demo_out / "doc2md" / "errors.jsonl").read_text().splitlines()]
    assert [e for e in errors if e["step"] != "keep page"] == []
    papers = sorted(p.name for p in (REPO / "samples" / "papers").iterdir() if p.is_dir())
    assert stats["inputs"] == len(papers) >= 6
    assert stats["samples"] / (stats["samples"] + len(errors)) >= 0.9, errors


# --- the build behind each recipe source ------------------------------------------------------------
# Each source of a recipe manifest carries a `# build: docforge build ...` comment: the command that
# writes its folder. The tests below hold those commands to the manifest and to the task templates.

BUILD_LINE = re.compile(r"^\s+# build: (docforge build .+)$")
SOURCE_LINE = re.compile(r"^  - name: (\S+)")
DEMO_DATASET = {  # a documented build -> the `make demo` dataset written by the same command
    ("ingest", "img2dataset"): "captions",
    ("ingest", "llava"): "conversations",
    ("ingest", "donut"): "ocr-en",  # donut writes `build ocr`'s shape (family ocr, KEY.txt) without word boxes
    ("doc2md", None): "doc2md",
    ("ocr", "en"): "ocr-en",
    ("ocr", "zh"): "ocr-zh",
    ("positional", None): "positional",
    **{("ingest", fmt): f"stage3/{fmt}" for fmt in ("doclaynet", "cdla", "funsd", "xfund", "sroie", "wildreceipt",
                                                     "docvqa", "infovqa", "chartqa", "textvqa", "ocrvqa",
                                                     "pubtabnet", "mmtab", "im2latex", "crohme", "anyword")},
}
WORD_BOX_JOBS = ("ocr", "doc2md", "positional")  # the builds whose records let `positional` ask about a page


def documented_builds(path: Path) -> dict[str, list[str]]:
    """Source name -> the `# build:` commands in its entry."""
    builds: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := SOURCE_LINE.match(line):
            current = match.group(1)
            builds[current] = []
        elif (match := BUILD_LINE.match(line)) and current is not None:
            builds[current].append(match.group(1))
    return builds


def parsed_build(command: str):
    """A documented command parsed by the real `docforge` CLI parser (bad flags fail the test)."""
    import shlex

    from pipelines.cli import build_parser

    argv = shlex.split(command)
    assert argv[:2] == ["docforge", "build"], command
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"not a valid docforge command: {command}")


def build_kind(args) -> tuple[str, str | None]:
    if args.job == "ingest":
        return "ingest", args.format
    return args.job, args.lang if args.job == "ocr" else None


@pytest.mark.parametrize("path", RECIPE, ids=lambda p: p.name)
def test_recipe_documents_the_build_that_writes_each_source(path):
    builds = documented_builds(path)
    for source in raw_sources(path):
        commands = builds.get(source["name"], [])
        assert len(commands) == 1, f"{path.name}: {source['name']}: expected one '# build:' line, got {commands}"
        args = parsed_build(commands[0])
        assert args.output == source["shards"], \
            f"{path.name}: {source['name']}: the build writes {args.output}, the source reads {source['shards']}"
        assert build_kind(args) in DEMO_DATASET, f"{path.name}: {source['name']}: unexpected build {commands[0]}"


@pytest.mark.parametrize("path", RECIPE, ids=lambda p: p.name)
def test_recipe_positional_sources_are_built_with_word_boxes(recipe_env, path):
    """`positional` asks about word boxes: only `build ocr|doc2md|positional` records carry them (an ingested
    SynthDoG via --format donut has text only, and every positional draw of it would be a template error)."""
    builds = documented_builds(path)
    for source in load_manifest(str(path), resolve=False).sources:
        if "positional" in [task for task, _ in source.tasks]:
            args = parsed_build(builds[source.name][0])
            assert args.job in WORD_BOX_JOBS, f"{path.name}: {source.name}: positional over a {args.job} build"


def test_recipe_stage3_ocr_pages_are_not_stage2_pages():
    """`build ocr` page i is a function of (--seed, i): stage 3's pages need seeds stage 2 did not use."""
    def ocr_seeds(path):
        commands = [parsed_build(c[0]) for c in documented_builds(path).values() if c]
        return {(args.lang, args.seed) for args in commands if args.job == "ocr"}

    stage2, stage3 = ocr_seeds(RECIPE_DIR / "stage2.yaml"), ocr_seeds(RECIPE_DIR / "stage3.yaml")
    assert stage2 and stage3
    assert not stage2 & stage3, f"stage 3 OCR builds repeat stage 2's pages: {sorted(stage2 & stage3)}"


@pytest.fixture
def recipe_over_demo_builds(demo_out, monkeypatch, tmp_path):
    """DATA_ROOT and DOCFORGE_SHARDS laid out as the recipe expects, each source's folder a link to the demo
    dataset written by the same kind of build as the source's `# build:` line."""
    roots = {"DATA_ROOT": tmp_path / "data", "DOCFORGE_SHARDS": tmp_path / "docforge"}
    for variable, root in roots.items():
        monkeypatch.setenv(variable, str(root))
    for path in RECIPE:
        builds = documented_builds(path)
        for source in raw_sources(path):
            folder = Path(source["shards"].replace("${DATA_ROOT}", str(roots["DATA_ROOT"]))
                          .replace("${DOCFORGE_SHARDS}", str(roots["DOCFORGE_SHARDS"])))
            if not folder.exists():
                folder.parent.mkdir(parents=True, exist_ok=True)
                folder.symlink_to(demo_out / DEMO_DATASET[build_kind(parsed_build(builds[source["name"]][0]))],
                                  target_is_directory=True)
    return tmp_path


@pytest.mark.parametrize("path", RECIPE, ids=lambda p: p.name)
def test_recipe_streams_over_its_builds_without_template_errors(recipe_over_demo_builds, path):
    """Every sample the documented builds write renders under every task its source asks for, and the
    weighted stream of each stage runs with no template errors."""
    import random

    from mixtures.stream import MixtureStream, Slot
    from mixtures.tasks import render_conversation
    from pipelines.shard_reader import first_samples

    mixture = load_manifest(str(path))
    for source in mixture.sources:
        samples = list(first_samples([ref.url for ref in source.shards], 16))
        assert samples, f"{path.name}: {source.name}: no samples"
        for sample in samples:
            for task, _ in source.tasks:
                assert render_conversation(task, sample, random.Random(0), lang=source.lang, prompts=source.prompts)
    stream = MixtureStream(mixture, Slot(), buffer_size=4)
    samples = list(islice(stream, 200))
    assert len(samples) == 200 and all(s["conversation"] for s in samples)
    assert not any(stream.template_errors.values()), dict(stream.template_errors)
