"""Formulas: display math lifted from LaTeX, idempotent normalisation, unsafe LaTeX refused, batched pdflatex
that isolates broken formulas, and `docforge build formulas` on real Ray (list and arXiv sources)."""

import io
import json
import tarfile

import pytest
from PIL import Image

from pipelines.formulas import FormulasJob
from pipelines.runner import RunOptions, run_job
from pipelines.verify import verify_dataset
from synth.formula_grammar import generate_formula
from synth.formula_render import RenderOptions, render_formulas
from synth.formulas import FormulaError, check_formula_safe, extract_display_math, normalize_latex
from tests.test_ocr_job import samples_of

PAPER = r"""\documentclass{article}
\begin{document}
Inline $x$ is not display math.
\begin{equation}\label{eq:energy} E = {m \over c^2} % a comment
\end{equation}
$$ a+b $$ and \[ \int_0^1 f(x)\,dx \]
\begin{align*} a &= b \\ c &= d \end{align*}
\begin{figure}\begin{equation*} z \end{equation*}\end{figure}
\begin{gather} x \\ y \end{gather}
\end{document}
"""


def test_display_math_is_lifted_from_every_display_environment():
    lifted = [(f.environment, f.latex) for f in extract_display_math(PAPER)]
    assert lifted == [
        ("equation", "\\label{eq:energy} E = {m \\over c^2} % a comment"),
        ("$$", "a+b"),
        ("\\[", "\\int_0^1 f(x)\\,dx"),
        ("align*", "\\begin{aligned}a &= b \\\\ c &= d\\end{aligned}"),
        ("equation*", "z"),
        ("gather", "\\begin{gathered}x \\\\ y\\end{gathered}"),
    ]


def test_normalisation_is_canonical_and_idempotent():
    assert normalize_latex("\\label{eq:energy} E = {m \\over c^2} % a comment\n") == "E = \\frac { m } { c ^ 2 }"
    assert normalize_latex("{n \\choose k}") == "\\binom { n } { k }"
    assert normalize_latex("x   =\n\\alpha_{12}") == "x = \\alpha _ { 1 2 }"
    formulas = [f.latex for f in extract_display_math(PAPER)] + [generate_formula(seed) for seed in range(50)]
    formulas += ["{a \\over b", "\\left( x \\right) \\\\ y''", "\\ a \\, b \\; c", "\\text{ rate } \\%"]
    for formula in formulas:
        once = normalize_latex(formula)
        assert normalize_latex(once) == once, formula


KEPT_MEANING = [r"f(x) = x \quad \text{for all } x \in \mathbb{R}", r"a \hspace{1cm} b \hspace*{2mm} c",
                r"\begin{aligned}a &= b \\[6pt] c &= d\end{aligned}", r"\begin{array}{p{2cm}c} a & b \end{array}",
                r"\operatorname{argmax}_x f(x) \rule[-1pt]{1pt}{8pt}", r"x \mathrel{\raisebox{2pt}{$\scriptstyle <$}} y",
                r"x \kern2pt z \mkern-3mu y", r"\mbox{if }  n > 0 \textbf{ and } m"]


def png_pixels(image) -> bytes:
    return Image.open(io.BytesIO(image.png)).tobytes()


def test_normalisation_keeps_what_a_formula_draws():
    """Text-mode words, dimensions, a row break's [6pt] and an array's p{2cm} stay whole: the normalised formula
    renders pixel for pixel as the one it came from (cut into characters, \\hspace{1 c m} failed to compile,
    \\text{f o r a l l} came out letter-spaced and \\\\ [ 6 p t ] printed "[6pt]")."""
    normalized = [normalize_latex(formula) for formula in KEPT_MEANING]
    assert [normalize_latex(once) for once in normalized] == normalized
    raw, canonical = render_formulas(KEPT_MEANING, RenderOptions(dpi=100)), render_formulas(normalized,
                                                                                          RenderOptions(dpi=100))
    assert not raw.failures and not canonical.failures, (raw.failures, canonical.failures)
    for position, formula in enumerate(KEPT_MEANING):
        assert png_pixels(raw.images[position]) == png_pixels(canonical.images[position]), formula


def test_display_environments_unicode_math_and_long_formulas_render():
    """`split` and `alignat` (lifted from an equation) work only at the top level of a display: they become
    `aligned` and `alignedat`; Unicode minus and relations become macros pdflatex reads; a formula wider
    than a page's text stays on one line."""
    long_formula = " + ".join(f"\\frac{{a_{{{i}}}}}{{b_{{{i}}}}}" for i in range(40))
    formulas = [r"\begin{split} a &= b + c \\ &= d \end{split}", r"\begin{alignat}{2} x &= y &\quad z &= w \end{alignat}",
                "a − b ≤ c × d", long_formula, "\\frac{a_{1}}{b_{1}}"]
    normalized = [normalize_latex(formula) for formula in formulas]
    assert normalized[0].startswith("\\begin{aligned}") and normalized[1].startswith("\\begin{alignedat} {2}")
    assert normalized[2] == "a - b \\leq c \\times d"
    result = render_formulas(normalized, RenderOptions(dpi=100))
    assert not result.failures, result.failures
    one_line = result.images[4].height
    assert result.images[3].height <= one_line + 2 and result.images[3].width > 20 * result.images[4].width


@pytest.mark.parametrize("formula", ["\\write18{rm -rf /}", "x + \\input{/etc/passwd}", "\\immediate\\write18{id}",
                                     "\\def\\x{\\x}\\x", "\\openin5=/etc/passwd", "\\catcode`\\^^M=13"])
def test_unsafe_latex_is_refused(formula):
    with pytest.raises(FormulaError, match="refused"):
        check_formula_safe(formula)


def test_a_batch_with_two_broken_formulas_yields_every_good_one():
    formulas = ["E = m c ^ 2", "\\frac { a } { b } + \\sqrt { x }", "\\undefinedmacro x", "\\int _ 0 ^ 1 f ( x ) d x",
                "a + { b", "\\begin{aligned} a & = b \\\\ c & = d \\end{aligned}", "\\sum _ { i = 1 } ^ { n } i"]
    result = render_formulas(formulas, RenderOptions(dpi=100))
    assert set(result.failures) == {2, 4}
    assert "Undefined control sequence" in result.failures[2]
    assert sorted(result.images) == [0, 1, 3, 5, 6]
    for image in result.images.values():
        pixels = Image.open(io.BytesIO(image.png)).convert("L")
        assert pixels.size == (image.width, image.height)
        assert pixels.getextrema()[0] < 100  # ink
        assert pixels.getpixel((0, 0)) == 255 and pixels.getpixel((image.width - 1, image.height - 1)) == 255


def test_list_job_logs_exactly_the_refused_and_broken_formulas(ray_local, tmp_path):
    lines = ["x ^ 2 + y ^ 2 = z ^ 2", "\\frac{1}{2}", "\\brokenmacro{1}", "a \\over b", "\\input{secret.tex}",
             "\\alpha + \\beta", "\\frac{1}{2}", "{ c"]
    lst = tmp_path / "formulas.lst"
    lst.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run_job(FormulasJob("list", [str(lst)], batch_size=4, batches_per_task=1, dpi=100), str(out),
                     RunOptions(progress=False))
    assert result.ok and verify_dataset(str(out)).ok
    samples = samples_of(out)
    assert sorted(samples) == ["formula-formulas-0000000", "formula-formulas-0000001", "formula-formulas-0000003",
                               "formula-formulas-0000005"]  # line 6 repeats line 1
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted((e["input"].split(" ")[0], e["step"]) for e in errors) == [
        ("formula-formulas-0000002", "render"), ("formula-formulas-0000004", "check"),
        ("formula-formulas-0000007", "render")]
    sample = samples["formula-formulas-0000003"]
    record = json.loads(sample["json"])
    assert sample["tex"].decode() == "\\frac { a } { b }" == record["latex"] and record["latex_raw"] == "a \\over b"
    assert Image.open(io.BytesIO(sample["png"])).size == (record["image"]["width"], record["image"]["height"])


def test_arxiv_job_reads_tex_tarballs_and_lifted_jsonl(ray_local, tmp_path):
    papers = tmp_path / "papers"
    papers.mkdir()
    long_formula = "\\sum_{i=1}^{n} \\frac{x_i^2}{\\sigma_i} = \\int_0^\\infty e^{-t} dt"
    (papers / "2403.00001.tex").write_text(f"\\begin{{equation}}{long_formula}\\end{{equation}} $$ short $$")
    source = f"\\[ {long_formula} + \\gamma_{{0}} \\] \\begin{{align}} a_1 + a_2 + a_3 + a_4 &= b_1 + b_2 + b_3 " \
             "\\end{align}"
    with tarfile.open(papers / "2403.00002.tar.gz", "w:gz") as archive:
        data = source.encode()
        info = tarfile.TarInfo("main.tex")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (papers / "broken.tar.gz").write_bytes(b"not a tarball at all")
    lifted = papers / "lifted"
    lifted.mkdir()
    (lifted / "part-0.jsonl").write_text(
        json.dumps({"paper": "2403.00003", "kind": "formula", "latex": "\\mathbf{W}_q \\mathbf{x} + \\mathbf{b} = "
                    "\\operatorname{softmax}(z)"}) + "\n"
        + json.dumps({"paper": "2403.00003", "kind": "table", "latex": "\\begin{tabular}{c}1\\end{tabular}"}) + "\n"
        + "{oops\n"
        + json.dumps({"paper": "2403.00003", "kind": "formula", "latex": long_formula}) + "\n"
        + json.dumps({"paper": "2403.00004", "kind": "formula", "id": "S1.E2", "display": "",
                      "tex": ["x_1 + x_2 + x_3 = y_1", "x_4 + x_5 + x_6 = y_2 + y_3 + y_4"]}) + "\n")
    (papers / "errors.jsonl").write_text("{this is a job's error log, not lifted output}\n")
    out = tmp_path / "out"
    result = run_job(FormulasJob("arxiv", [str(papers)], batch_size=8, dpi=100), str(out), RunOptions(progress=False))
    assert result.ok
    samples = samples_of(out)
    origins = sorted(json.loads(s["json"])["origin"]["environment"] for s in samples.values())
    # the short $$ is too short; the lifted duplicate of the equation is dropped
    assert origins == ["\\[", "align", "equation", "lifted", "lifted"]
    records = [json.loads(s["json"]) for s in samples.values()]
    (rows,) = [r for r in records if r["origin"].get("paper") == "2403.00004"]
    assert rows["latex_raw"] == \
        "\\begin{gathered}x_1 + x_2 + x_3 = y_1 \\\\ x_4 + x_5 + x_6 = y_2 + y_3 + y_4\\end{gathered}"
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["step"] for e in errors) == ["read lifted", "read tarball"]


def test_generated_source_plans_the_same_formulas_every_time():
    first, second = FormulasJob("generated", count=7, seed=3, batch_size=3).plan(), \
        FormulasJob("generated", count=7, seed=3, batch_size=3).plan()
    assert first.fingerprint() == second.fingerprint()
    formulas = [f for task in first.tasks for batch in task.items for f in batch]
    assert len({f["key"] for f in formulas}) == len(formulas) and 1 <= len(formulas) <= 7
    assert all(f["key"].startswith("formula-gen-s3-") for f in formulas)
    assert FormulasJob("generated", count=7, seed=4).plan().fingerprint() != first.fingerprint()
