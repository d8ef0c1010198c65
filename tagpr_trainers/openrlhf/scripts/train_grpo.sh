#!/usr/bin/env bash
# GRPO (RL stage 1 or 2) with OpenRLHF 0.11 (openrlhf.cli.train_ppo_ray, Ray + vLLM) and a tagpr reward.
#
#   python -c "from tagpr_trainers.openrlhf.export import export_rl; ..."      # prompts + JSON labels
#   TAGPR_REWARD_CONFIG=$PWD/stage2.yaml MODEL=ckpt/sft DATA=rl.openrlhf.jsonl OUTPUT=ckpt/rl2 \
#       bash tagpr_trainers/openrlhf/scripts/train_grpo.sh [extra openrlhf flags...]
#
# The reward: REWARD_URL, default tagpr_trainers/openrlhf/reward_func.py (OpenRLHF loads it in its vLLM
# workers and calls reward_func(queries, prompts, labels); it builds the reward from the YAML/JSON
# named by TAGPR_REWARD_CONFIG, an absolute path). Or a server URL, e.g. the batching PRMU server
# `tagpr-rm serve`: REWARD_URL=http://127.0.0.1:5000/get_reward.
# On an existing Ray cluster pass TAGPR_REWARD_CONFIG to the workers
# (ray job submit --runtime-env-json '{"env_vars": {"TAGPR_REWARD_CONFIG": "..."}}').
#
# Settings (environment): MODEL, DATA, OUTPUT (required); GPUS (8), VLLM_ENGINES (= GPUS),
# N_SAMPLES (8), ROLLOUT_BATCH_SIZE (32), TRAIN_BATCH_SIZE (256), MICRO_BATCH_SIZE (4),
# MAX_NEW_TOKENS (1024), MAX_LEN (4096), LR (1e-6), KL_COEF (1e-3), EPISODES (1), SAVE_STEPS (20),
# SEED (42), LAUNCHER (default: "python3 -m"). Hyperparameters are our choices: the TagPR paper does
# not publish its own.
# TAGPR_PRINT_ARGS=1 prints the module and arguments (NUL-separated) instead of running; the
# test suite checks them against the installed OpenRLHF's parser that way.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODEL="${MODEL:?set MODEL to the SFT (or stage-1) checkpoint}"
DATA="${DATA:?set DATA to the JSONL written by tagpr_trainers.openrlhf.export.export_rl}"
OUTPUT="${OUTPUT:?set OUTPUT to the checkpoint directory}"
GPUS="${GPUS:-8}"
MODULE=openrlhf.cli.train_ppo_ray

ARGS=(
  --actor.model_name_or_path "$MODEL"
  --reward.remote_url "${REWARD_URL:-$HERE/../reward_func.py}"
  --data.prompt_dataset "$DATA"
  --data.input_key input
  --data.label_key label
  --data.apply_chat_template
  --data.max_len "${MAX_LEN:-4096}"
  --algo.advantage.estimator group_norm
  --rollout.n_samples_per_prompt "${N_SAMPLES:-8}"
  --rollout.batch_size "${ROLLOUT_BATCH_SIZE:-32}"
  --rollout.micro_batch_size "${MICRO_BATCH_SIZE:-4}"
  --rollout.max_new_tokens "${MAX_NEW_TOKENS:-1024}"
  --rollout.temperature 1.0
  --train.batch_size "${TRAIN_BATCH_SIZE:-256}"
  --train.micro_batch_size "${MICRO_BATCH_SIZE:-4}"
  --train.num_episodes "${EPISODES:-1}"
  --train.max_epochs 1
  --train.seed "${SEED:-42}"
  --actor.adam.lr "${LR:-1e-6}"
  --algo.kl.use_loss
  --algo.kl.estimator k3
  --algo.kl.init_coef "${KL_COEF:-1e-3}"
  --actor.num_nodes 1
  --actor.num_gpus_per_node "$GPUS"
  --ref.num_nodes 1
  --ref.num_gpus_per_node "$GPUS"
  --vllm.num_engines "${VLLM_ENGINES:-$GPUS}"
  --vllm.tensor_parallel_size 1
  --vllm.gpu_memory_utilization 0.6
  --vllm.enable_sleep
  --train.colocate_all
  --ds.enable_sleep
  --ds.zero_stage 3
  --ds.param_dtype bf16
  --actor.gradient_checkpointing_enable
  --ckpt.output_dir "$OUTPUT"
  --ckpt.save_steps "${SAVE_STEPS:-20}"
  --ckpt.save_hf
  --logger.logging_steps 1
  "$@"
)

if [[ "${TAGPR_PRINT_ARGS:-0}" == 1 ]]; then
  printf '%s\0' "$MODULE" "${ARGS[@]}"
  exit 0
fi
export TAGPR_REWARD_CONFIG="${TAGPR_REWARD_CONFIG:-}"
# shellcheck disable=SC2086  # LAUNCHER is a command line on purpose
exec ${LAUNCHER:-python3 -m} "$MODULE" "${ARGS[@]}"
