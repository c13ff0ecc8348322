"""Defaults of `toyvisor check` and the property helpers (a module of its own so the CLI can show
them without importing hypothesis)."""

#: Generated programs per property and strategy.
DEFAULT_EXAMPLES = 20
#: Seed of the program generator.
DEFAULT_SEED = 0
#: Smallest share of guest instructions a VMM must execute directly (Popek–Goldberg efficiency).
DEFAULT_EFFICIENCY = 0.8
