"""Raw data for the projects: source loaders and the deterministic builtin generators."""
