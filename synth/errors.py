"""The one error type of the synth renderers: a bad input (corpus, font file, config), said plainly.

`pipelines/` catches it per sample, records it in the job's error log and goes on.
"""


class SynthError(ValueError):
    """A sample cannot be rendered from these inputs; the message names the input and the reason."""
