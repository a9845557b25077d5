"""Typed configuration: one pydantic model per YAML section, and :func:`load_config`.

A config is YAML validated by :class:`Config` (``extra="forbid"`` everywhere), so a typo, a wrong type or a
bad value is a :class:`~lesionseg.errors.ConfigError` whose one-line message names the file and the key::

    cfg = load_config("lesion_t2w_cascade", overrides=["train.lr=1e-3", "data.contrasts=[T2w,T1w]"])

Override values are parsed as YAML scalars/lists, so ``1e-3``, ``true``, ``[64, 64, 32]`` keep their types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lesionseg.constants import CONTRASTS, CORD_SUFFIX, LESION_SUFFIX
from lesionseg.errors import ConfigError

#: what a model segments: lesions, the spinal cord, the intervertebral discs or C2 (vertebral levels)
Target = Literal["lesion", "cord", "disc", "c2"]

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Section):
    """Subject-level train/val/test split, reproducible from ``seed``."""

    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> SplitConfig:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


class DataConfig(_Section):
    """Where the data is and how BIDS files are named."""

    root: Path | None = None
    contrasts: list[str] = Field(default_factory=lambda: ["T2w"], min_length=1)
    target: Target = "lesion"
    lesion_suffix: str = LESION_SUFFIX
    cord_suffix: str = CORD_SUFFIX
    split: SplitConfig = Field(default_factory=SplitConfig)
    #: folder of preprocessed training volumes reused across runs (keyed by file hashes + preprocessing); None: off
    cache_dir: Path | None = None


class PreprocessConfig(_Section):
    """Preprocessing shared by training and inference (orientation is always RAS, see constants)."""

    spacing_mm: tuple[float, float, float] | None = (1.0, 1.0, 1.0)
    #: ``zscore`` (voxels above the mean), ``percentile`` (to [0, 1]) or ``signed`` (divided by a high percentile
    #: of the magnitude, so zero stays zero and signs survive: phase-sensitive inversion recovery)
    normalization: Literal["zscore", "percentile", "signed"] = "zscore"
    percentiles: tuple[float, float] = (0.5, 99.5)
    #: normalisation of particular contrasts, overriding ``normalization`` (the contrast of an image comes from
    #: its BIDS suffix, or from ``lesionseg infer --contrast``)
    contrast_normalization: dict[str, Literal["zscore", "percentile", "signed"]] = Field(
        default_factory=lambda: {"PSIR": "signed"}
    )

    @field_validator("spacing_mm")
    @classmethod
    def _positive_spacing(cls, value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if value is not None and min(value) <= 0:
            raise ValueError("every spacing must be > 0 mm")
        return value

    @field_validator("percentiles")
    @classmethod
    def _ordered_percentiles(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low < high <= 100.0:
            raise ValueError("percentiles must satisfy 0 <= low < high <= 100")
        return value


class AugmentConfig(_Section):
    """TorchIO augmentation; each ``p_*`` is the probability of that transform."""

    enabled: bool = True
    p_affine: float = Field(0.5, ge=0, le=1)
    p_elastic: float = Field(0.0, ge=0, le=1)
    p_bias_field: float = Field(0.3, ge=0, le=1)
    p_noise: float = Field(0.3, ge=0, le=1)
    p_gamma: float = Field(0.3, ge=0, le=1)
    p_blur: float = Field(0.1, ge=0, le=1)
    p_anisotropy: float = Field(0.1, ge=0, le=1)
    p_flip_lr: float = Field(0.5, ge=0, le=1)
    #: negate the normalised image (polarity-invariant features: helps transfer across contrasts)
    p_invert: float = Field(0.0, ge=0, le=1)


class ModelConfig(_Section):
    """A MONAI 3D U-Net."""

    architecture: Literal["unet", "dynunet"] = "unet"
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64, 128], min_length=2)
    strides: list[int] = Field(default_factory=lambda: [2, 2, 2], min_length=1)
    num_res_units: int = Field(0, ge=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    norm: Literal["instance", "batch"] = "instance"

    @model_validator(mode="after")
    def _strides_match_channels(self) -> ModelConfig:
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError(
                f"strides needs len(channels) - 1 = {len(self.channels) - 1} values, got {len(self.strides)}"
            )
        return self


class TrainConfig(_Section):
    """Optimisation and the patch pipeline."""

    steps: int = Field(2000, ge=1)
    batch_size: int = Field(2, ge=1)
    patch_size: tuple[int, int, int] = (64, 64, 32)
    samples_per_volume: int = Field(8, ge=1)
    queue_length: int = Field(48, ge=1)
    foreground_probability: float = Field(0.7, ge=0, lt=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    warmup_steps: int = Field(50, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    loss: Literal["dicece", "dicefocal", "tversky"] = "dicece"
    val_every: int = Field(200, ge=1)
    seed: int = 0
    deterministic: bool = False
    num_workers: int = Field(1, ge=0)
    prefetch_batches: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True


class InferConfig(_Section):
    """Sliding-window inference."""

    roi_size: tuple[int, int, int] | None = None
    overlap: float = Field(0.25, ge=0, lt=1)
    sw_batch_size: int = Field(2, ge=1)
    mode: Literal["gaussian", "constant"] = "gaussian"
    threshold: float = Field(0.5, gt=0, lt=1)
    min_lesion_mm3: float = Field(0.0, ge=0)
    #: flip test-time augmentation by default (the 8 mirrorings averaged, 8x the network time; nnU-Net's default
    #: too); ``lesionseg infer --tta/--no-tta`` overrides it
    tta: bool = False
    #: network arithmetic on the CPU: ``fp32``, or ``bf16`` autocast (fast on CPUs with AVX-512 BF16 / AMX)
    precision: Literal["fp32", "bf16"] = "fp32"
    #: working memory (MB) beyond the input and output arrays; a larger image is processed in overlapping slabs
    #: (normalised with statistics of the whole image). None: whole image at once
    memory_budget_mb: float | None = Field(None, gt=0)


class CascadeConfig(_Section):
    """Cord-then-lesion cascade (Gros et al. 2019).

    With ``enabled``, the lesion model trains on crops around the ground-truth cord (each face jittered by up to
    ``jitter_mm``) and validates on crops around the cord predicted by ``cord_model`` (the ground-truth cord when
    none is given). At inference the same margin and restriction are used.
    """

    enabled: bool = False
    cord_model: Path | None = None
    margin_mm: tuple[float, float, float] = (10.0, 10.0, 10.0)
    jitter_mm: float = Field(4.0, ge=0)
    restrict_to_cord: bool = True
    cord_dilation_mm: float = Field(3.0, ge=0)
    #: a lesion is kept only when at least this fraction of its voxels lies inside the undilated predicted cord
    #: (0: every lesion inside the dilated cord is kept)
    min_cord_fraction: float = Field(0.5, ge=0, le=1)
    #: lesions of this volume (mm3) or less are removed (3 mm3: the rule of the anima lesion-wise evaluation)
    min_lesion_mm3: float = Field(3.0, ge=0)
    #: the box around a cord localiser's finding in which the cord model runs (a bundle's ``localizer/``)
    localizer_margin_mm: tuple[float, float, float] = (20.0, 20.0, 30.0)
    #: the cord model's cord is kept only within this in-plane distance of the localiser's finding
    localizer_dilation_mm: float = Field(6.0, ge=0)
    #: the localiser's finding is its most posterior sizeable component within this left-right distance of the
    #: body's midline (the cord runs in the mid-sagittal plane, jugular veins 20-35 mm beside it, the airway in
    #: front of the spine; inference.cascade.component_near_midline); None: the largest component
    localizer_midline_mm: float | None = Field(15.0, gt=0)
    #: each axial slice of what the cord model runs on (the localiser's box) equalised on its own (CLAHE) with this
    #: clip limit before the cord model (None: off); for scans where the cord is nearly as bright as its CSF
    #: (MT-off, proton density): ``transforms.normalization.equalize_slices``
    cord_clahe_clip_limit: float | None = Field(None, gt=0, le=1)


class FPReductionConfig(_Section):
    """Second-stage false-positive reduction (Valverde et al. 2017).

    When ``first_model`` is set, this run trains the second network on patches centred where ``first_model``
    fires (candidates above ``candidate_threshold``, true and false). At inference a candidate lesion is kept
    when the second network's mean probability over it reaches ``accept_threshold``.
    """

    first_model: Path | None = None
    candidate_threshold: float = Field(0.5, gt=0, lt=1)
    accept_threshold: float = Field(0.5, gt=0, lt=1)


def _known_contrasts(value: list[str]) -> list[str]:
    unknown = [c for c in value if c not in CONTRASTS]
    if unknown:
        raise ValueError(f"unknown contrast(s) {unknown}; known: {list(CONTRASTS)}")
    return value


#: Contrasts the phantom generator renders (:data:`~lesionseg.constants.CONTRASTS`).
PhantomContrasts = Annotated[list[str], AfterValidator(_known_contrasts)]


class AcquisitionConfig(_Section):
    """How one contrast of a phantom is acquired."""

    spacing_mm: tuple[float, float, float] = (3.0, 0.8, 0.8)
    noise_fraction: float = Field(0.03, ge=0)
    bias_field: float = Field(0.3, ge=0)

    @field_validator("spacing_mm")
    @classmethod
    def _positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0:
            raise ValueError("every spacing must be > 0 mm")
        return value


def _default_acquisitions() -> dict[str, AcquisitionConfig]:
    return {
        "T2w": AcquisitionConfig(spacing_mm=(3.0, 0.8, 0.8)),  # sagittal, thick LR slices
        "T1w": AcquisitionConfig(spacing_mm=(1.0, 1.0, 1.0)),  # 3D MPRAGE
        "PSIR": AcquisitionConfig(spacing_mm=(0.7, 0.7, 3.0)),  # axial, thick SI slices
        "T2starw": AcquisitionConfig(spacing_mm=(0.5, 0.5, 5.0)),  # axial gradient echo, thick SI slices
    }


class SynthConfig(_Section):
    """The phantom generator (see :mod:`lesionseg.synth`)."""

    subjects: int = Field(8, ge=1)
    contrasts: PhantomContrasts = Field(default_factory=lambda: ["T2w"], min_length=1)
    seed: int = 0
    fov_mm: tuple[float, float, float] = (40.0, 56.0, 96.0)
    max_lesions: int = Field(6, ge=0)
    p_no_lesion: float = Field(0.15, ge=0, le=1)
    #: At most this many lesion mimics per subject (faint in-cord foci, lesion-bright foci in soft tissue).
    max_mimics: int = Field(0, ge=0)
    random_orientation: bool = True
    acquisition: dict[str, AcquisitionConfig] = Field(default_factory=_default_acquisitions)
    #: the body around the canal (a whole field of view: set ``fov_mm`` to e.g. [220, 220, 110]); None: the
    #: small phantoms' neck ellipse
    body: Literal["neck", "thorax", "lumbar"] | None = None
    #: the field of view reaches the top of the spine: the C2-C3 disc about 45 mm below the top of the field of
    #: view, C2, C1 and the skull base above it; C2 is labelled (``c2-manual``)
    top_of_spine: bool = False
    #: render the cord's grey-matter butterfly (its intensity per contrast: lesionseg.synth.contrasts.GREY_MATTER_RANGE)
    grey_matter: bool = False

    @model_validator(mode="after")
    def _acquisition_for_each_contrast(self) -> SynthConfig:
        missing = [c for c in self.contrasts if c not in self.acquisition]
        if missing:
            raise ValueError(f"acquisition has no entry for contrast(s) {missing}")
        return self


class TransferConfig(_Section):
    """Start from another model's weights (see :mod:`lesionseg.training.transfer`)."""

    init_from: Path | None = None
    mode: Literal["full", "frozen_encoder", "progressive", "discriminative"] = "full"
    reinit_head: bool = False
    #: scale loaded convolutions that feed a normalisation back to their initial norms (same function, faster
    #: fine-tuning; see lesionseg.training.transfer)
    rescale: bool = False
    #: progressive: steps between unfreezing one more block (from the head towards the input)
    unfreeze_every: int = Field(100, ge=1)
    #: discriminative: learning-rate factor per block away from the head
    lr_decay: float = Field(0.5, gt=0, le=1)
    #: input polarity of the loaded network: ``auto`` inverts it when the labels are brighter than their
    #: surroundings in the source's training data and darker in the target's, or the reverse (T2w -> T1w or PSIR:
    #: lesions turn from bright to dark, as the CSF does); ``keep``; ``invert``
    polarity: Literal["auto", "keep", "invert"] = "auto"


class RandomizeConfig(_Section):
    """Training on domain-randomised phantoms generated on the fly (:mod:`lesionseg.synth.randomized`) instead of
    the dataset's images; the dataset then serves only for validation."""

    enabled: bool = False
    #: new phantoms drawn for each epoch (each gives ``train.samples_per_volume`` patches)
    subjects_per_epoch: int = Field(32, ge=1)
    #: probability of a known contrast's intensities rather than random ones
    p_known_contrast: float = Field(0.5, ge=0, le=1)
    #: the known contrasts drawn (uniformly); one contrast with ``p_known_contrast: 1`` trains a model of that
    #: contrast on phantoms still randomised in resolution, artefacts and anatomy
    contrasts: PhantomContrasts = Field(default_factory=lambda: list(CONTRASTS), min_length=1)
    max_lesions: int = Field(6, ge=0)
    p_no_lesion: float = Field(0.15, ge=0, le=1)
    max_mimics: int = Field(3, ge=0)
    #: probability of a whole field of view (whole-neck axial stack, long sagittal series, 3D volume) with the
    #: body around the canal; the other phantoms then show the canal's neighbours half of the time
    p_whole_fov: float = Field(0.0, ge=0, le=1)
    #: probability that a neck phantom (whole field of view or small) reaches the top of the spine: C2 above its top
    #: disc (C2-C3), C1 and the skull base (the C2 model's positives)
    p_top_of_spine: float = Field(0.6, ge=0, le=1)
    #: probability that the cord ends in the field of view (the conus, the cauda equina below it) on a phantom that
    #: is not a lumbar whole field of view (those always show it)
    p_conus: float = Field(0.3, ge=0, le=1)


class Config(_Section):
    """The whole configuration; every section has defaults."""

    data: DataConfig = Field(default_factory=DataConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    infer: InferConfig = Field(default_factory=InferConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    fp_reduction: FPReductionConfig = Field(default_factory=FPReductionConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    randomize: RandomizeConfig = Field(default_factory=RandomizeConfig)


def _set_dotted(tree: dict[str, Any], dotted_key: str, value: Any, source: str) -> None:
    keys = dotted_key.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: override {dotted_key!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_override(override: str) -> tuple[str, Any]:
    """Split ``"train.lr=1e-3"`` into ``("train.lr", 0.001)``; the value is parsed as YAML.

    Raises:
        ConfigError: when there is no ``=`` or the key is empty.
    """
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {override!r}: expected key=value, e.g. train.lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def _format_validation_error(source: str, error: ValidationError, overridden: frozenset[str] = frozenset()) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if any(location == key or location.startswith(f"{key}.") for key in overridden):
        source = f"{source} (--set)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    extra = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{source}: {location}: {message}{extra}"


def config_from_dict(
    tree: dict[str, Any], *, source: str = "<config>", overridden: frozenset[str] = frozenset()
) -> Config:
    """Validate a plain dict as a :class:`Config`.

    Raises:
        ConfigError: one line naming ``source`` (and ``--set`` when the key was overridden) and the first
            offending key.
    """
    try:
        return Config.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error, overridden)) from None


def package_folder(name: str) -> Path:
    """A folder shipped inside the package (``lesionseg/<name>``: package data, so a wheel has it) as a path."""
    from importlib import resources

    return Path(str(resources.files("lesionseg") / name))


def configs_dir() -> Path:
    """The configs shipped in the package (``lesionseg/configs``)."""
    return package_folder("configs")


def resolve_config(name_or_path: str | Path) -> Path:
    """A config file as given when it exists, else the shipped config of that name (``demo`` or ``demo.yaml``).

    Raises:
        ConfigError: neither a file nor a shipped config's name.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = configs_dir() / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    known = ", ".join(p.stem for p in sorted(configs_dir().glob("*.yaml")))
    raise ConfigError(f"{name_or_path}: no such config file or shipped config (shipped: {known})")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (a file, or a shipped config's name such as ``"demo"``; the defaults when ``path`` is
    None) and apply ``key=value`` overrides.

    Raises:
        ConfigError: no such file or shipped config, unreadable file, invalid YAML, unknown key, wrong type or bad
            value.
    """
    path = resolve_config(path) if path is not None else None
    source = str(path) if path is not None else "<defaults>"
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{source}: cannot read config ({error.strerror or error})") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{source}: not UTF-8 text (byte {error.start}); save the config as UTF-8") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{source}: invalid YAML{where}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of sections at the top level")
        tree = loaded
    overridden = set()
    for override in overrides or []:
        key, value = parse_override(override)
        _set_dotted(tree, key, value, source)
        overridden.add(key)
    return config_from_dict(tree, source=source, overridden=frozenset(overridden))
