#!/usr/bin/env bash
# SFT on tagged reasoning chains with OpenRLHF 0.11 (openrlhf.cli.train_sft, DeepSpeed).
#
#   python -c "from tagpr_trainers.openrlhf.export import export_sft; export_sft('sft_chains.jsonl', 'sft.openrlhf.jsonl')"
#   MODEL=Qwen/Qwen2.5-1.5B-Instruct DATA=sft.openrlhf.jsonl OUTPUT=ckpt/sft \
#       bash tagpr_trainers/openrlhf/scripts/train_sft.sh [extra openrlhf flags...]
#
# Settings (environment): MODEL, DATA, OUTPUT (required); GPUS (8), MAX_LEN (4096),
# BATCH_SIZE (64), MICRO_BATCH_SIZE (2), EPOCHS (2), LR (5e-6), ZERO_STAGE (2), SEED (42),
# LAUNCHER (default: "deepspeed --num_gpus $GPUS --module"). Hyperparameters are our choices:
# the TagPR paper does not publish its own.
# TAGPR_PRINT_ARGS=1 prints the module and arguments (NUL-separated) instead of running; the
# test suite checks them against the installed OpenRLHF's parser that way.
set -euo pipefail

MODEL="${MODEL:?set MODEL to the base model (HF name or path)}"
DATA="${DATA:?set DATA to the JSONL written by tagpr_trainers.openrlhf.export.export_sft}"
OUTPUT="${OUTPUT:?set OUTPUT to the checkpoint directory}"
GPUS="${GPUS:-8}"
MODULE=openrlhf.cli.train_sft

ARGS=(
  --model.model_name_or_path "$MODEL"
  --data.dataset "$DATA"
  --data.input_key input
  --data.output_key output
  --data.apply_chat_template
  --data.max_len "${MAX_LEN:-4096}"
  --train.batch_size "${BATCH_SIZE:-64}"
  --train.micro_batch_size "${MICRO_BATCH_SIZE:-2}"
  --train.max_epochs "${EPOCHS:-2}"
  --train.seed "${SEED:-42}"
  --adam.lr "${LR:-5e-6}"
  --lr_warmup_ratio 0.03
  --ds.zero_stage "${ZERO_STAGE:-2}"
  --ds.param_dtype bf16
  --model.gradient_checkpointing_enable
  --ckpt.output_dir "$OUTPUT"
  --logger.logging_steps 1
  "$@"
)

if [[ "${TAGPR_PRINT_ARGS:-0}" == 1 ]]; then
  printf '%s\0' "$MODULE" "${ARGS[@]}"
  exit 0
fi
# shellcheck disable=SC2086  # LAUNCHER is a command line on purpose
exec ${LAUNCHER:-deepspeed --num_gpus "$GPUS" --module} "$MODULE" "${ARGS[@]}"
