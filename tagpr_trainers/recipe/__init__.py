"""The bundled ``tagpr-train`` recipe: typed configs, stages, checkpoints and the CLI."""
