"""`docforge build doc2md`: Nougat-style arXiv page pairs (page image, page markdown), English and Chinese.

The flow for one paper, one small module per step: `unpack` (source tarball / gzip / folder, safely) →
`compile` (the paper's own PDF, or pdflatex/xelatex with no shell escape) → `latexml` (LaTeX → HTML with
math kept as TeX) → `html_to_markdown` (Nougat's conventions) → `pages` (split the markdown into the PDF's
pages by fuzzy matching, score, keep or drop each page) → `job` (render kept pages, write samples).
"""
