"""tagpr_rewards: composable reward classes for TagPR-style personalization RL.

Importing this package is light: it pulls in no torch, transformers or sentence-transformers.
Those load only when a reward that needs them (PRMU) is built.

>>> import subprocess, sys
>>> subprocess.run([sys.executable, "-c", "import sys, tagpr_rewards; print('torch' in sys.modules)"],
...                capture_output=True, text=True).stdout.strip()
'False'
"""

from __future__ import annotations

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.registry import build_reward, register_reward, reward_names

__all__ = ["Batch", "Reward", "RewardOutput", "build_reward", "register_reward", "reward_names"]
__version__ = "0.1.0"
