"""The score stage's configuration: frozen dataclasses of plain fields (the CLI and jobs/ build them).

Models are written `[ALIAS=]NAME:PRETRAINED` (`tiny`, `ViT-L-14:openai`, `dfn=ViT-H-14:/ckpt.pt`,
`local-dir:/folder`). The alias names the model's output columns (`clip_<alias>`) and embedding folder;
by default it is `tiny` for the bundled model, else a slug of the name (`vit_l_14`), with the pretrained
tag's slug added when two models share a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from curate.errors import CurateError
from curate.models.langid import BUNDLED
from curate.models.spec import HF_HUB_PREFIX, LOCAL_DIR_PREFIX, TINY, ClipSpec

_RUNTIME = {"fingerprint": False}  # a field that changes how the stage runs, not what it writes
ALIAS_RE = re.compile(r"^([a-z0-9_]+)=(.+)$")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ModelEntry:
    """One configured CLIP model: its alias and spec."""

    alias: str
    spec: ClipSpec

    @property
    def column(self) -> str:
        return f"clip_{self.alias}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _base_name(spec: ClipSpec) -> str:
    if spec.name.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX)):
        return spec.name.split(":", 1)[1].rstrip("/").rsplit("/", 1)[-1] or spec.name
    return spec.name


def parse_models(texts: tuple[str, ...]) -> tuple[ModelEntry, ...]:
    """Parse `[ALIAS=]NAME:PRETRAINED` strings, choosing default aliases; raise on duplicates."""
    if not texts:
        raise CurateError("score: configure at least one CLIP model")
    parsed: list[tuple[str | None, ClipSpec]] = []
    for text in texts:
        m = ALIAS_RE.match(text.strip())
        alias, rest = (m.group(1), m.group(2)) if m else (None, text)
        parsed.append((alias, ClipSpec.parse(rest)))
    names = [_slug(_base_name(s)) for _, s in parsed]
    entries = []
    for (alias, spec), name in zip(parsed, names, strict=True):
        if alias is None:
            if spec.name == TINY and spec.pretrained is None:
                alias = TINY
            elif names.count(name) > 1 and spec.pretrained:
                alias = f"{name}_{_slug(spec.pretrained.rsplit('/', 1)[-1])}"
            else:
                alias = name
        entries.append(ModelEntry(alias or "model", spec))
    aliases = [e.alias for e in entries]
    dupes = sorted({a for a in aliases if aliases.count(a) > 1})
    if dupes:
        raise CurateError(f"score: models share the alias {dupes}; name them ALIAS=NAME:PRETRAINED")
    return tuple(entries)


@dataclass(frozen=True)
class ClipConfig:
    """The CLIP actor: every model runs in one pass over each decoded batch."""

    model: str = "tiny"  # [ALIAS=]NAME:PRETRAINED of the first model: it gives clip_similarity and embeddings/
    extra_models: tuple[str, ...] = ()  # more models, run in the same pass over the pixels
    embeddings: tuple[str, ...] = ()  # aliases (or "all") whose embeddings are written besides the first's
    probes: tuple[str, ...] = ()  # probe spec files (.json), or names of bundled probes
    device: str = "cpu"  # cpu or cuda
    precision: str = "auto"  # auto (bf16 on cuda, fp32 on cpu), fp32, bf16, fp16
    # torch threads per actor; more oversubscribes a small machine. Not fingerprinted (curate.io.fingerprint):
    # it changes how fast the stage runs, not what it writes
    threads: int = field(default=1, metadata={"fingerprint": False})
    decode_on_device: bool = True  # on cuda: decode JPEGs on the GPU (nvjpeg) inside the actor
    # the CPU decoder: "exact" (in full, as the model's own transform would: bit-exact scores), or "simplejpeg" /
    # "pil-draft" (a JPEG at the smallest DCT scale covering the model's input: faster, scores move; RESULTS.md)
    decoder: str = "exact"

    def entries(self) -> tuple[ModelEntry, ...]:
        return parse_models((self.model, *self.extra_models))

    @property
    def gpu_decode(self) -> bool:
        """JPEGs are decoded on the GPU in the CLIP actor (not with --exact-decode, which decodes on the CPU)."""
        return self.device.startswith("cuda") and self.decode_on_device

    @property
    def decoded_by(self) -> str:
        """nvjpeg (gpu_decode), else the CPU decoder."""
        return "nvjpeg" if self.gpu_decode else self.decoder

    def embedding_aliases(self) -> tuple[str, ...]:
        """The first model's alias, then those asked for in `embeddings`, in model order."""
        entries = self.entries()
        known = {e.alias for e in entries}
        unknown = sorted(set(self.embeddings) - known - {"all"})
        if unknown:
            raise CurateError(f"score: --embeddings names {unknown}, but the models are {sorted(known)}")
        want = set(self.embeddings)
        return tuple(e.alias for i, e in enumerate(entries) if i == 0 or "all" in want or e.alias in want)

    def validate(self) -> None:
        if self.device.split(":")[0] not in DEVICES:
            raise CurateError(f"score: device {self.device!r} is not one of {DEVICES}")
        if self.threads < 1:
            raise CurateError("score: threads must be at least 1")
        from curate.models.transforms import DECODERS

        if self.decoder not in DECODERS:
            raise CurateError(f"score: decoder {self.decoder!r} is not one of {DECODERS}")
        self.embedding_aliases()


@dataclass(frozen=True)
class LangIdConfig:
    model: str = BUNDLED  # "bundled" (lid.176.ftz), or lid.176.bin / .ftz by path or URL (fetched once, cached)


@dataclass(frozen=True)
class ScoreConfig:
    clip: ClipConfig = field(default_factory=ClipConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    # The fields below size batches, actors and tasks: how the stage runs, not what it writes (each image is
    # scored alone), so they are left out of its _fingerprint.json (curate.io.fingerprint) and may change
    # between a run and its rerun.
    clip_batch_size: int = field(default=64, metadata=_RUNTIME)
    clip_actors: int = field(default=1, metadata=_RUNTIME)
    # GPUs per CLIP actor (e.g. 1, or 0.5 to pack two actors on a GPU)
    clip_num_gpus: float = field(default=0.0, metadata=_RUNTIME)
    langid_batch_size: int = field(default=256, metadata=_RUNTIME)
    langid_actors: int = field(default=1, metadata=_RUNTIME)
    # images per decode task (CPU decoding runs in tasks, beside the actors)
    decode_batch_size: int = field(default=64, metadata=_RUNTIME)
    # decode in CPU tasks that overlap inference; False: in the CLIP actor (the same decoder either way)
    decode_tasks: bool = field(default=True, metadata=_RUNTIME)
    # decode tasks at once (raise it on a cluster: about CPUs per CLIP actor)
    decode_concurrency: int = field(default=2, metadata=_RUNTIME)
