"""``tagpr-rm``: serve a reward (PRMU or any composite) to OpenRLHF over HTTP.

    tagpr-rm serve --checkpoint runs/prmu --port 5000
    tagpr-rm serve --reward-config stage2.yaml --checkpoint runs/prmu --port 5000
    # OpenRLHF: --reward.remote_url http://127.0.0.1:5000/get_reward

``--reward-config`` is a YAML/JSON reward config (``tagpr_rewards.presets.build_from_config``);
with ``--checkpoint`` too, a ``stage2`` preset without a ``prmu`` entry gets
``prmu: {checkpoint: ...}``. Binds 127.0.0.1 unless ``--host`` says otherwise. A bearer token
is read from ``--token-env`` (default ``TAGPR_RM_TOKEN``) so it does not show in ``ps``.

>>> build_parser().parse_args(["serve", "--checkpoint", "x"]).host
'127.0.0.1'
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "build_served_reward", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``tagpr-rm`` parser (the shared grammar of :mod:`tagpr_rewards.cli_options`)."""
    from tagpr_rewards import cli_options as co

    p = co.make_parser("tagpr-rm", "OpenRLHF remote reward server (batching).")
    sub = co.add_subcommands(p, dest="cmd")
    s = co.subcommand(sub, "serve", "serve a reward over HTTP (OpenRLHF remote reward protocol)")
    s.add_argument("--checkpoint", help="PRMU checkpoint directory (serves PRMU alone without --reward-config)")
    s.add_argument("--reward-config", help="YAML/JSON reward config (preset or reward node)")
    co.add_set(s, "the reward config (gamma=0.5, prmu.normalize=none, ...)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (another than loopback: set a token)")
    s.add_argument("--port", type=int, default=5000, help="TCP port")
    co.add_device(s, help="device of the PRMU (auto: CUDA when available, else CPU)")
    s.add_argument("--dtype", default=None, help="PRMU head precision (default: float32)")
    s.add_argument("--normalize", default="none", choices=("none", "group", "center"),
                   help="PRMU-only mode: per-group normalisation")
    s.add_argument("--max-batch-size", type=int, default=256, help="samples scored in one batch at most")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits to be batched")
    s.add_argument("--no-batching", action="store_true", help="score every request on its own")
    s.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body accepted")
    s.add_argument("--max-samples", type=int, default=4096, help="most samples in one request")
    s.add_argument("--fallback", type=float, default=0.0, help="reward when the reward raises")
    s.add_argument("--token-env", default="TAGPR_RM_TOKEN",
                   help="environment variable holding the bearer token (unset = no auth)")
    return p


def _read_config(path: str) -> Any:
    from tagpr_rewards.config_io import ConfigError, load_mapping

    try:
        return load_mapping(path, "reward config")
    except ConfigError as e:
        raise SystemExit(f"tagpr-rm: error: {e}") from e


def build_served_reward(checkpoint: str | None = None, reward_config: str | None = None,
                        device: str = "cpu", dtype: str | None = None, normalize: str = "none",
                        overrides: Sequence[str] = ()) -> Any:
    """The reward ``tagpr-rm serve`` serves (see the module docstring); ``overrides`` are the
    ``--set KEY=VALUE`` edits of the reward config."""
    if overrides and not reward_config:
        raise SystemExit("tagpr-rm: error: --set edits the reward config: give --reward-config FILE")
    if reward_config:
        cfg = _read_config(reward_config)
        if overrides:
            from tagpr_rewards.config_io import ConfigError, apply_overrides

            try:
                cfg = apply_overrides(cfg, overrides, what="--set")
            except ConfigError as e:
                raise SystemExit(f"tagpr-rm: error: {e}") from e
        if isinstance(cfg, dict) and checkpoint and cfg.get("preset") == "stage2" and not cfg.get("prmu"):
            cfg = {**cfg, "prmu": {"checkpoint": checkpoint, "device": device, "dtype": dtype}}
        try:
            from tagpr_rewards.presets import build_from_config
        except ImportError as e:
            raise SystemExit(f"--reward-config needs tagpr_rewards.presets ({e})") from e
        return build_from_config(cfg, source=reward_config)
    if not checkpoint:
        raise SystemExit("tagpr-rm serve: give --checkpoint DIR (PRMU) and/or --reward-config FILE")
    from tagpr_rewards.prmu.reward import PRMUReward

    return PRMUReward(checkpoint, device=device, dtype=dtype, normalize=normalize)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (exit 141, quietly, when its output pipe is closed)."""
    from tagpr_rewards.files import quiet_broken_pipe

    return quiet_broken_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tagpr_rewards.cli_options import resolve_device, setup_logging

    setup_logging(args, fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get(args.token_env)
    if token is not None and not token.strip():
        # an empty variable used to mean "no auth", silently: refuse it
        raise SystemExit(f"tagpr-rm serve: ${args.token_env} is set but empty; set it to a secret token, "
                         f"or unset it to serve without auth")
    reward = build_served_reward(args.checkpoint, args.reward_config, resolve_device(args.device), args.dtype,
                                 args.normalize, args.set)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("tagpr_rewards.prmu.server").warning(
            "binding %s: the reward server is reachable from other machines%s", args.host,
            "" if token else f" WITHOUT a token (set ${args.token_env})")
    from tagpr_rewards.prmu.server import serve

    serve(reward, host=args.host, port=args.port, token=token,
          max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, batching=not args.no_batching,
          max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_samples=args.max_samples,
          fallback=args.fallback)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
