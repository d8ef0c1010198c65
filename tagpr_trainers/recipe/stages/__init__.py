"""The ``tagpr-train`` stages, in pipeline order: data, sft, prmu, rl (stage 1 then 2), eval."""
