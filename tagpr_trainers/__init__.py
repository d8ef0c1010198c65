"""tagpr trainers: TRL and OpenRLHF adapters, the tagged-chain data pipeline and the ``tagpr-train`` recipe.

Importing this package (and the adapters) is light: no torch, TRL or OpenRLHF until they are used.

>>> import subprocess, sys
>>> code = ("import sys, tagpr_trainers, tagpr_trainers.trl_adapter, tagpr_trainers.openrlhf.export, "
...         "tagpr_trainers.openrlhf.remote_reward, tagpr_trainers.openrlhf.launch; "
...         "print(sorted(m for m in ('torch', 'trl', 'openrlhf', 'transformers') if m in sys.modules))")
>>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
'[]'
"""

from __future__ import annotations
